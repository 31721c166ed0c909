//! One mailbox of the round trip over `mxtrace_net::imap`: opened and logged in before the
//! message is sent, searched in INBOX and Junk by the probe's id, waited on with IDLE (or
//! polled), and cleaned of mxtrace's own message only.

use super::MailboxOptions;
use mxtrace_net::imap::{Credentials, IdleEnd, ImapConn, ImapError};
use mxtrace_proto::model::roundtrip::{
    Cleanup, CleanupAction, FolderKind, ImapStep, MailboxSummary,
};
use std::time::Duration;
use tokio::time::Instant;

/// The header every probe message carries its id in (probe/data.rs).
pub const ID_HEADER: &str = "X-Mxtrace-Probe";
/// The first wait between two looks; doubled each time up to `MAX_STEP`.
const FIRST_STEP: Duration = Duration::from_millis(250);
/// The longest wait between two looks: a message filed in Junk (not watched by IDLE) or a
/// bounce is seen at most this late.
const MAX_STEP: Duration = Duration::from_secs(8);
/// Bounces are read up to this size: the report parts come first, the returned message last.
pub const BOUNCE_BYTES: u32 = 512 * 1024;

/// Where a message was found.
#[derive(Debug, Clone)]
pub struct Location {
    pub folder: String,
    pub kind: FolderKind,
    pub uid: u32,
    pub seen_at: std::time::SystemTime,
}

pub struct Mailbox {
    pub conn: ImapConn,
    pub summary: MailboxSummary,
}

impl Mailbox {
    /// Connects and logs in with `creds`; the Junk folder is looked up at once. The log comes
    /// back with the error too.
    pub async fn open(
        opts: &MailboxOptions,
        creds: &Credentials,
        label: &str,
        t0: Instant,
    ) -> Result<Mailbox, (ImapError, Vec<ImapStep>)> {
        let mut conn = ImapConn::connect(&opts.imap, label, t0).await?;
        let login = match conn.login(creds).await {
            Ok(l) => l,
            Err(e) => return Err((e, std::mem::take(&mut conn.log))),
        };
        let junk = match conn.junk_folder().await {
            Ok(j) => j,
            Err(e) => return Err((e, std::mem::take(&mut conn.log))),
        };
        let summary = MailboxSummary {
            url: opts.url.to_string(),
            tls: conn.tls.clone(),
            idle: conn.offers("IDLE"),
            uidplus: conn.offers("UIDPLUS"),
            junk_folder: junk.as_ref().map(|(n, _)| n.clone()),
            junk_found_by: junk.as_ref().map(|(_, b)| b.as_str().to_string()),
            login,
        };
        Ok(Mailbox { conn, summary })
    }

    /// The folders to look in, INBOX last (so it stays selected for IDLE).
    fn folders(&self) -> Vec<(String, FolderKind)> {
        let mut f = Vec::new();
        if let Some(j) = &self.summary.junk_folder {
            f.push((j.clone(), FolderKind::Junk));
        }
        f.push(("INBOX".to_string(), FolderKind::Inbox));
        f
    }

    /// Looks for messages matching `criteria` (criterion, value) in Junk and INBOX.
    pub async fn locate(
        &mut self,
        criteria: &[(&str, &str)],
    ) -> Result<Option<Location>, ImapError> {
        let mut found = None;
        for (folder, kind) in self.folders() {
            self.conn.open_folder(&folder, false).await?;
            let uids = self.conn.uid_search(criteria).await?;
            if let (None, Some(&uid)) = (&found, uids.first()) {
                found = Some(Location {
                    folder,
                    kind,
                    uid,
                    seen_at: std::time::SystemTime::now(),
                });
            }
        }
        Ok(found)
    }

    /// Waits up to `step` for something to happen: IDLE on INBOX when offered, else a pause.
    pub async fn pause(&mut self, step: Duration) -> Result<(), ImapError> {
        if self.summary.idle {
            match self.conn.idle(step).await? {
                IdleEnd::Changed | IdleEnd::Quiet => Ok(()),
            }
        } else {
            tokio::time::sleep(step).await;
            Ok(())
        }
    }

    /// Deletes the message at `loc` (and nothing else), or says why it stays.
    pub async fn clean(&mut self, what: &str, loc: &Location, keep: bool) -> Cleanup {
        let mut c = Cleanup {
            message: what.to_string(),
            folder: loc.folder.clone(),
            uid: loc.uid,
            action: CleanupAction::Kept,
            detail: None,
        };
        if keep {
            c.detail = Some("--keep: left in place".into());
            return c;
        }
        if !self.summary.uidplus {
            c.action = CleanupAction::LeftNoUidplus;
            c.detail = Some(
                "the server has no UIDPLUS (RFC 4315): deleting by UID only is not possible, \
                 and a plain EXPUNGE could remove other messages marked deleted; left in place"
                    .into(),
            );
            return c;
        }
        let result = async {
            self.conn.open_folder(&loc.folder, true).await?;
            self.conn.uid_delete(loc.uid).await
        }
        .await;
        match result {
            Ok(()) => c.action = CleanupAction::Deleted,
            Err(e) => {
                c.action = CleanupAction::Failed;
                c.detail = Some(e.to_string());
            }
        }
        c
    }
}

/// The next wait: doubled, at most `MAX_STEP`, never past the deadline.
pub fn next_step(step: Duration, deadline: Instant) -> Duration {
    step.min(deadline.saturating_duration_since(Instant::now()))
}

pub fn grow(step: Duration) -> Duration {
    (step * 2).min(MAX_STEP)
}

pub fn first_step() -> Duration {
    FIRST_STEP
}
