//! The mailbox commands of the round trip over `ImapConn::run`: finding the Junk folder,
//! opening a folder, searching and fetching by UID, deleting one message by UID, IDLE.

use super::parse::{self, Kind, Token};
use super::{Arg, ImapConn, ImapError, Selected};
use tokio::time::{timeout_at, Instant};

/// Names a Junk folder goes by when the server does not mark it (RFC 6154 absent), most usual
/// first: Dovecot's and most servers' `Junk`, Exchange's `Junk Email`/`Junk E-mail`, `Spam`
/// (cPanel's `INBOX.spam`), Yahoo's `Bulk Mail`, GMX and Web.de's `Spamverdacht`, and Outlook's
/// localised names as IMAP sends them (modified UTF-7, RFC 3501 5.1.3). A name matches as a
/// whole or as the last level of a hierarchy (`INBOX.Junk`, `INBOX/Spam`).
const JUNK_NAMES: &[&str] = &[
    "Junk",
    "Junk Email",
    "Junk E-mail",
    "Spam",
    "Junk-E-Mail",
    "Bulk Mail",
    "Spamverdacht",
    "Courrier ind&AOk-sirable",
    "Correo no deseado",
    "Posta indesiderata",
    "Ongewenste e-mail",
];

/// The folder of `names` that is most likely Junk, by `JUNK_NAMES`.
fn junk_by_name(names: &[String]) -> Option<String> {
    let last = |n: &str| n.rsplit(['.', '/']).next().unwrap_or(n).to_string();
    JUNK_NAMES.iter().find_map(|want| {
        let hit = |n: &&String| n.eq_ignore_ascii_case(want);
        let nested = |n: &&String| last(n).eq_ignore_ascii_case(want);
        names
            .iter()
            .find(hit)
            .or_else(|| names.iter().find(nested))
            .cloned()
    })
}

/// How the Junk folder was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JunkFoundBy {
    SpecialUse,
    Name,
}

impl JunkFoundBy {
    pub fn as_str(self) -> &'static str {
        match self {
            JunkFoundBy::SpecialUse => "special-use",
            JunkFoundBy::Name => "name",
        }
    }
}

/// What ended an IDLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleEnd {
    /// The server said the mailbox changed (EXISTS, RECENT or FETCH).
    Changed,
    /// The time asked for passed.
    Quiet,
}

impl ImapConn {
    /// The Junk folder: the `\Junk` mailbox of `LIST (SPECIAL-USE)` (RFC 6154) when offered,
    /// else of a plain LIST (some servers mark it there), else one of the usual names.
    pub async fn junk_folder(&mut self) -> Result<Option<(String, JunkFoundBy)>, ImapError> {
        let special = self.offers("SPECIAL-USE");
        let (shown, args): (&str, &[Arg<'_>]) = if special {
            (
                "LIST (SPECIAL-USE) \"\" \"*\"",
                &[Arg::Raw("LIST (SPECIAL-USE) \"\" \"*\"")],
            )
        } else {
            ("LIST \"\" \"*\"", &[Arg::Raw("LIST \"\" \"*\"")])
        };
        let done = self.run(shown, args).await?;
        let mut names = Vec::new();
        for r in &done.untagged {
            if let Some((attrs, name)) = parse::list(&r.tokens(), r) {
                if attrs.iter().any(|a| a == "\\junk") {
                    return Ok(Some((name, JunkFoundBy::SpecialUse)));
                }
                names.push(name);
            }
        }
        Ok(junk_by_name(&names).map(|n| (n, JunkFoundBy::Name)))
    }

    /// EXAMINE (read-only: flags stay as they are) or SELECT (to delete) a folder.
    pub async fn open_folder(&mut self, name: &str, write: bool) -> Result<Selected, ImapError> {
        let verb = if write { "SELECT" } else { "EXAMINE" };
        let shown = format!("{verb} {}", super::quoted_or_shown(name));
        let done = self
            .run(&shown, &[Arg::Raw(verb), Arg::Str(name.as_bytes())])
            .await?;
        let mut sel = Selected::default();
        for r in &done.untagged {
            let Kind::Untagged(rest) = r.kind() else {
                continue;
            };
            let status = parse::Status::parse(rest);
            if status.is_ok() {
                sel.uidvalidity = status.number("UIDVALIDITY").or(sel.uidvalidity);
                sel.uidnext = status.number("UIDNEXT").or(sel.uidnext);
            } else if let Some((n, w)) = parse::numbered(&r.tokens()) {
                if w == "EXISTS" {
                    sel.exists = n;
                }
            }
        }
        Ok(sel)
    }

    /// `UID SEARCH` with criteria, each a key and a string value (`HEADER X-Mxtrace-Probe`
    /// and the id; `TEXT` and the id; `NOT HEADER X-Mxtrace-Probe` and the id).
    pub async fn uid_search(&mut self, criteria: &[(&str, &str)]) -> Result<Vec<u32>, ImapError> {
        let mut shown = "UID SEARCH".to_string();
        let mut args = vec![Arg::Raw("UID SEARCH")];
        for (key, value) in criteria {
            shown.push_str(&format!(" {key} {}", super::quoted_or_shown(value)));
            args.push(Arg::Raw(key));
            args.push(Arg::Str(value.as_bytes()));
        }
        let done = self.run(&shown, &args).await?;
        let mut uids = Vec::new();
        for r in &done.untagged {
            if let Some(found) = parse::search(&r.tokens()) {
                uids.extend(found);
            }
        }
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// One message's header (`BODY.PEEK[HEADER]`) or its first `partial` bytes
    /// (`BODY.PEEK[]<0.partial>`); PEEK, so \Seen is not set. Within the literal cap.
    pub async fn uid_fetch(
        &mut self,
        uid: u32,
        partial: Option<u32>,
    ) -> Result<Option<Vec<u8>>, ImapError> {
        let (item, key) = match partial {
            Some(n) => (format!("BODY.PEEK[]<0.{n}>"), "BODY[]<0>"),
            None => ("BODY.PEEK[HEADER]".to_string(), "BODY[HEADER]"),
        };
        let cmd = format!("UID FETCH {uid} ({item})");
        let done = self.run(&cmd, &[Arg::Raw(&cmd)]).await?;
        for r in &done.untagged {
            if let Some((got, body)) = parse::fetch(&r.tokens(), key, r) {
                if got == Some(uid) && body.is_some() {
                    return Ok(body);
                }
            }
        }
        Ok(None)
    }

    /// Deletes exactly one message of the selected folder: `UID STORE +FLAGS.SILENT
    /// (\Deleted)` then `UID EXPUNGE` of that UID only (RFC 4315 2.1). The caller checks
    /// UIDPLUS first: a plain EXPUNGE would also remove other messages marked deleted.
    pub async fn uid_delete(&mut self, uid: u32) -> Result<(), ImapError> {
        let store = format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)");
        self.run(&store, &[Arg::Raw(&store)]).await?;
        let expunge = format!("UID EXPUNGE {uid}");
        self.run(&expunge, &[Arg::Raw(&expunge)]).await?;
        Ok(())
    }

    pub async fn noop(&mut self) -> Result<(), ImapError> {
        self.run("NOOP", &[Arg::Raw("NOOP")]).await.map(|_| ())
    }

    /// LOGOUT (its `* BYE` is expected here); errors do not matter any more.
    pub async fn logout(&mut self) {
        self.bye_expected = true;
        let _ = self.run("LOGOUT", &[Arg::Raw("LOGOUT")]).await;
    }

    /// IDLE (RFC 2177) on the selected folder for at most `wait`: ends early when the server
    /// reports a change. Every response is read with the usual bounds.
    pub async fn idle(&mut self, wait: std::time::Duration) -> Result<IdleEnd, ImapError> {
        let started = Instant::now();
        let result = self.idle_inner(wait).await;
        let shown = format!("IDLE (up to {:.1} s), DONE", wait.as_secs_f64());
        match result {
            Ok((end, status)) => {
                self.record(&shown, &Ok(&status), started);
                if status.is_ok() {
                    Ok(end)
                } else {
                    Err(ImapError::Refused {
                        command: "IDLE".into(),
                        status: status.status,
                        text: status.text,
                    })
                }
            }
            Err(e) => {
                self.record(&shown, &Err(&e), started);
                Err(e)
            }
        }
    }

    async fn idle_inner(
        &mut self,
        wait: std::time::Duration,
    ) -> Result<(IdleEnd, parse::Status), ImapError> {
        let tag = self.tag();
        let deadline = self.deadline();
        self.send(format!("{tag} IDLE\r\n").as_bytes(), deadline)
            .await?;
        let mut untagged = Vec::new();
        self.await_continuation(&tag, &mut untagged, deadline)
            .await?;
        let mut end = if untagged.iter().any(changed) {
            IdleEnd::Changed
        } else {
            IdleEnd::Quiet
        };
        let until = Instant::now() + wait;
        let mut seen = 0usize;
        while end == IdleEnd::Quiet {
            // A whole response is read with the command deadline once its first byte is here.
            if !self.buf.contains(&b'\n') {
                match timeout_at(
                    until,
                    self.fill(until + self.opts.command_timeout, "in IDLE"),
                )
                .await
                {
                    Err(_) => break,
                    Ok(r) => {
                        r?;
                        continue;
                    }
                }
            }
            let r = self.read_response(self.deadline()).await?;
            seen += 1;
            if seen > super::MAX_UNTAGGED {
                return Err(ImapError::TooLarge {
                    what: "number of responses in IDLE",
                    limit: super::MAX_UNTAGGED,
                });
            }
            if let Kind::Untagged(rest) = r.kind() {
                if super::strip_word(rest, "BYE").is_some() {
                    return Err(ImapError::Bye(super::clip(rest)));
                }
            }
            if changed(&r) {
                end = IdleEnd::Changed;
            }
        }
        let deadline = self.deadline();
        self.send(b"DONE\r\n", deadline).await?;
        let done = self.collect(&tag, Vec::new(), deadline).await?;
        Ok((end, done.status))
    }
}

/// EXISTS, RECENT or FETCH: something arrived or changed.
fn changed(r: &parse::Response) -> bool {
    matches!(
        parse::numbered(&r.tokens()),
        Some((_, w)) if w == "EXISTS" || w == "RECENT" || w == "FETCH"
    ) && !matches!(r.tokens().first(), Some(Token::Open))
}

#[cfg(test)]
mod tests {
    use super::junk_by_name;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn junk_goes_by_its_usual_names_whole_or_nested() {
        let got = |n: &[&str]| junk_by_name(&names(n));
        assert_eq!(
            got(&["INBOX", "Sent", "Junk Email"]).as_deref(),
            Some("Junk Email")
        );
        assert_eq!(
            got(&["INBOX", "INBOX.Sent", "INBOX.spam"]).as_deref(),
            Some("INBOX.spam")
        );
        assert_eq!(got(&["INBOX", "INBOX/Junk"]).as_deref(), Some("INBOX/Junk"));
        // The most usual name wins over a less usual one, and a whole name over a nested one.
        assert_eq!(got(&["Spam", "Junk"]).as_deref(), Some("Junk"));
        assert_eq!(got(&["Archive/Junk", "Junk"]).as_deref(), Some("Junk"));
        assert_eq!(
            got(&["INBOX", "Courrier ind&AOk-sirable"]).as_deref(),
            Some("Courrier ind&AOk-sirable")
        );
        assert_eq!(
            got(&["INBOX", "Spamverdacht"]).as_deref(),
            Some("Spamverdacht")
        );
        assert_eq!(got(&["INBOX", "Sent", "Junkyard"]), None);
        assert_eq!(got(&[]), None);
    }
}
