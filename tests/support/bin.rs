//! Running the mxtrace binary as a user would, and reading what it printed.

use std::process::{Command, Stdio};

// By path: this file is also included on its own (`#[path = "support/bin.rs"] mod bin;`).
#[path = "schema.rs"]
pub mod schema;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `mxtrace ARGS` with no terminal, no colour, the given extra environment. JSON output
/// (`--json`, `sweep`) is checked against its published schema (docs/schema).
pub fn mxtrace(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mxtrace"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run mxtrace");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    schema::check_output(args, &run.stdout);
    // A data table's `{setting:...}` token is worded before anything is shown.
    for out in [&run.stdout, &run.stderr] {
        assert!(
            !out.contains("{setting:"),
            "mxtrace {}: an unworded setting token in the output:\n{out}",
            args.join(" ")
        );
    }
    run
}

/// The stage objects of a probe's JSON with this name.
pub fn stages<'a>(json: &'a serde_json::Value, name: &str) -> Vec<&'a serde_json::Value> {
    json["stages"]
        .as_array()
        .map(|a| a.iter().filter(|s| s["stage"] == name).collect())
        .unwrap_or_default()
}

/// Replaces the time column and other values that change run to run, so a transcript can be
/// compared with a snapshot.
pub fn redact(transcript: &str) -> String {
    transcript
        .lines()
        .map(|l| {
            let l = match l.get(..12) {
                Some(head) if head.trim_end().ends_with(" ms") => {
                    format!("      #.# ms{}", &l[12..])
                }
                _ => l.to_string(),
            };
            redact_roots(&redact_ports(&l))
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// `system trust store (145 roots)` -> `(# roots)`: the count is the machine's store's.
pub fn redact_roots(l: &str) -> String {
    const AT: &str = "system trust store (";
    match l.find(AT) {
        Some(i) => {
            let rest = &l[i + AT.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            format!("{}#{}", &l[..i + AT.len()], &rest[digits..])
        }
        None => l.to_string(),
    }
}

/// `127.0.0.1:NNNNN` -> `127.0.0.1:PORT`.
pub fn redact_ports(l: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + 10]);
        rest = &rest[i + 10..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("PORT");
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}
