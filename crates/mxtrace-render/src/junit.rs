//! JUnit XML for CI (`run --junit FILE`): `testsuites` > one `testsuite` per hop > one
//! `testcase` per expectation, a `failure` for each one not met. The shape CI systems read
//! (Jenkins, GitLab, GitHub reporters): counts as attributes, message in `failure@message`.

use mxtrace_proto::model::RunReport;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub fn render(r: &RunReport, class_prefix: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<testsuites name="{}" tests="{}" failures="{}" errors="0" time="{:.3}">"#,
        esc(&format!("mxtrace run {}", r.name)),
        r.summary.total,
        r.summary.failed,
        r.elapsed_ms / 1000.0
    );
    for h in &r.hops {
        let failures = h.expectations.iter().filter(|e| !e.passed).count();
        let _ = writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="0" skipped="0" time="{:.3}" timestamp="{}">"#,
            esc(&format!("hop {} {}", h.hop, h.name)),
            h.expectations.len(),
            h.elapsed_ms / 1000.0,
            esc(r.started_at.trim_end_matches('Z')),
        );
        let class = esc(&format!("{class_prefix}.{}", h.name));
        for e in &h.expectations {
            let name = match &e.subject {
                Some(s) => format!("{s}: {}", e.description),
                None => e.description.clone(),
            };
            if e.passed {
                let _ = writeln!(
                    out,
                    r#"    <testcase name="{}" classname="{class}"/>"#,
                    esc(&name)
                );
                continue;
            }
            let _ = writeln!(
                out,
                r#"    <testcase name="{}" classname="{class}">"#,
                esc(&name)
            );
            let message = format!("expected {}, observed {}", e.expected, e.observed);
            let mut body = format!("{}\nid: {}\n", message, e.id);
            if let Some(c) = &e.cause {
                let _ = writeln!(body, "why: {c}");
            }
            let _ = writeln!(
                out,
                r#"      <failure message="{}" type="expectation">{}</failure>"#,
                esc(&message),
                esc(&body)
            );
            let _ = writeln!(out, "    </testcase>");
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    let _ = writeln!(out, "</testsuites>");
    out
}

/// Escapes text for an XML attribute or element, and drops characters XML 1.0 cannot carry
/// (control characters a server may have put in a reply).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => {}
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit file, claimed before the run (an unwritable path is a usage error found before
/// anything touches the network) and written at the end: into a temp file next to it, then
/// renamed, so CI never reads half a report. `--html` files are claimed the same way.
pub struct Pending {
    tmp: PathBuf,
    dest: PathBuf,
}

/// A report file that cannot be written. The front end says which option named it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PendingError {
    #[error("{}: not a file name", .0.display())]
    NotAFileName(PathBuf),
    #[error("{}: is a directory", .0.display())]
    Directory(PathBuf),
    #[error("{}: cannot write: {source}", .path.display())]
    Claim {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Pending {
    /// Claims `dest`: a temp file next to it is created now.
    pub fn open(dest: &Path) -> Result<Pending, PendingError> {
        let name = dest
            .file_name()
            .ok_or_else(|| PendingError::NotAFileName(dest.to_path_buf()))?;
        if dest.is_dir() {
            return Err(PendingError::Directory(dest.to_path_buf()));
        }
        let tmp = dest.with_file_name(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        std::fs::File::create(&tmp).map_err(|source| PendingError::Claim {
            path: dest.to_path_buf(),
            source,
        })?;
        Ok(Pending {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    pub fn commit(self, text: &str) -> Result<(), PendingError> {
        let err = |source| PendingError::Write {
            path: self.dest.clone(),
            source,
        };
        std::fs::write(&self.tmp, text).map_err(err)?;
        std::fs::rename(&self.tmp, &self.dest).map_err(err)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // After a successful rename the temp name is gone; otherwise clean up.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(esc(r#"<a & "b">'"#), "&lt;a &amp; &quot;b&quot;&gt;&apos;");
        assert_eq!(esc("a\u{1b}[31mb\r\nc"), "a?[31mb&#10;c");
    }
}
