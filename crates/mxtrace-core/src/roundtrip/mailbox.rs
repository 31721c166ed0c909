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

/// At most this many messages whose subject holds the id are checked, newest first.
const SUBJECT_CANDIDATES: usize = 5;

/// A search the server refused (NO or BAD) found nothing; other errors stay errors.
fn refused_as_none<T>(r: Result<T, ImapError>) -> Result<Option<T>, ImapError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ImapError::Refused { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the message header `raw` has the id header with the value `id`.
fn carries_id(raw: &[u8], id: &str) -> bool {
    mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.header_raw(ID_HEADER).map(|v| v.trim() == id))
        .unwrap_or(false)
}

/// What `locate_by` looks for.
#[derive(Clone, Copy)]
enum Look<'a> {
    Criteria(&'a [(&'a str, &'a str)]),
    Probe(&'a str),
}

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
        self.locate_by(Look::Criteria(criteria)).await
    }

    /// Looks for the probe message `id` in Junk and INBOX: by its id header (SEARCH HEADER);
    /// where that finds nothing or is refused (servers whose search does not reach every
    /// header field: reported of Yahoo and Exchange), by the id in its subject, a candidate
    /// counting only once its own header carries the id (a bounce quoting the subject does not).
    pub async fn locate_probe(&mut self, id: &str) -> Result<Option<Location>, ImapError> {
        self.locate_by(Look::Probe(id)).await
    }

    /// The first folder's match, every folder opened in turn (INBOX last, left selected).
    async fn locate_by(&mut self, look: Look<'_>) -> Result<Option<Location>, ImapError> {
        let mut found = None;
        for (folder, kind) in self.folders() {
            self.conn.open_folder(&folder, false).await?;
            let uid = match look {
                Look::Criteria(c) => self.conn.uid_search(c).await?.first().copied(),
                Look::Probe(id) => self.probe_uid(id).await?,
            };
            if let (None, Some(uid)) = (&found, uid) {
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

    /// The probe `id` in the open folder: by its id header, else by its subject.
    async fn probe_uid(&mut self, id: &str) -> Result<Option<u32>, ImapError> {
        let header = format!("HEADER {ID_HEADER}");
        let by_header = refused_as_none(self.conn.uid_search(&[(&header, id)]).await)?;
        match by_header.and_then(|u| u.first().copied()) {
            Some(uid) => Ok(Some(uid)),
            None => self.by_subject(id).await,
        }
    }

    /// The newest message of the open folder whose subject holds `id` and whose header
    /// carries it in the id header.
    async fn by_subject(&mut self, id: &str) -> Result<Option<u32>, ImapError> {
        let uids = refused_as_none(self.conn.uid_search(&[("SUBJECT", id)]).await)?;
        for uid in uids
            .unwrap_or_default()
            .into_iter()
            .rev()
            .take(SUBJECT_CANDIDATES)
        {
            let header = self.conn.uid_fetch(uid, None).await?;
            if header.as_deref().is_some_and(|h| carries_id(h, id)) {
                return Ok(Some(uid));
            }
        }
        Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_id_header_identifies_the_probe() {
        let id = "mxt-0123abcd";
        let probe = format!("Subject: mxtrace probe {id}\r\nX-Mxtrace-Probe:\r\n {id}\r\n\r\n");
        assert!(carries_id(probe.as_bytes(), id), "a folded field counts");
        let bounce = format!(
            "Subject: Undeliverable: mxtrace probe {id}\r\nContent-Type: multipart/report\r\n\r\n"
        );
        assert!(!carries_id(bounce.as_bytes(), id));
        let other = "X-Mxtrace-Probe: mxt-other\r\n\r\n";
        assert!(!carries_id(other.as_bytes(), id));
        assert!(!carries_id(b"\xff\xfe not a header", id));
    }

    #[test]
    fn a_refused_search_finds_nothing_and_other_errors_stay() {
        let refused = ImapError::Refused {
            command: "UID SEARCH".into(),
            status: "NO".into(),
            text: "not supported".into(),
        };
        assert!(matches!(refused_as_none::<()>(Err(refused)), Ok(None)));
        let closed = ImapError::Closed("while searching");
        assert!(refused_as_none::<()>(Err(closed)).is_err());
    }
}
