//! Reads a sweep's JSON lines (`sweep --json`: one shard's file, or every shard's) into the
//! fleet report of `mxtrace report`. Each line is checked as `diff` checks a result (its
//! `schema_version`, its `command`), read one at a time with a bound on its length, and
//! reduced to a row at once: memory grows with the number of targets, not with their reports.

use mxtrace_proto::model::fleet::{FleetReport, FleetRow};
use mxtrace_proto::model::{JobReport, ProbeReport, TraceReport, SCHEMA_VERSION};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The longest line read: a trace of many MX hosts with `--all` is a few hundred KB.
const MAX_LINE: u64 = 16 * 1024 * 1024;

/// A file that is not a sweep's output this version reads. Each names the file and line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", file.display())]
    Line {
        file: PathBuf,
        line: usize,
        message: String,
    },
}

/// Whether `file` holds a sweep's JSON lines: its first line is a whole JSON object with the
/// `input` every sweep line has (a saved `probe`/`trace`/`run` result has none).
pub fn is_sweep_output(file: &Path) -> bool {
    let Ok(f) = std::fs::File::open(file) else {
        return false;
    };
    let mut reader = BufReader::new(f.take(MAX_LINE));
    let mut first = String::new();
    while first.trim().is_empty() {
        first.clear();
        if !matches!(reader.read_line(&mut first), Ok(n) if n > 0) {
            return false;
        }
    }
    serde_json::from_str::<Value>(&first).is_ok_and(|v| v.get("input").is_some())
}

/// Reads every file; a target in several lines keeps its last (a `--resume` run appends).
pub fn read(files: &[PathBuf]) -> Result<FleetReport, FleetError> {
    let mut rows: HashMap<String, FleetRow> = HashMap::new();
    let mut repeated = 0;
    for file in files {
        let f = std::fs::File::open(file).map_err(|source| FleetError::Read {
            file: file.clone(),
            source,
        })?;
        let mut reader = BufReader::new(f);
        let mut buf = Vec::new();
        for n in 1.. {
            buf.clear();
            let got = (&mut reader)
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|source| FleetError::Read {
                    file: file.clone(),
                    source,
                })?;
            if got == 0 {
                break;
            }
            let at = |message: String| FleetError::Line {
                file: file.clone(),
                line: n,
                message,
            };
            if got as u64 > MAX_LINE {
                return Err(at(format!("line longer than {MAX_LINE} bytes")));
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let row = row(&buf).map_err(at)?;
            if rows.insert(row.input.clone(), row).is_some() {
                repeated += 1;
            }
        }
    }
    let names = files.iter().map(|f| f.display().to_string()).collect();
    Ok(FleetReport::new(
        names,
        rows.into_values().collect(),
        repeated,
    ))
}

/// One line: a probe's or trace's result, or a sweep line that did not run.
fn row(line: &[u8]) -> Result<FleetRow, String> {
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    match v.get("schema_version").and_then(Value::as_u64) {
        Some(n) if n == u64::from(SCHEMA_VERSION) => {}
        Some(n) => {
            return Err(format!(
                "schema_version {n} is not one this mxtrace reads (it reads {SCHEMA_VERSION})"
            ))
        }
        None => return Err("not a line of `mxtrace sweep --json` (no schema_version)".into()),
    }
    let input = v
        .get("input")
        .and_then(Value::as_str)
        .ok_or("not a line of `mxtrace sweep --json` (no input)")?
        .to_string();
    let invalid = |e: serde_json::Error| format!("not a valid result for {input:?}: {e}");
    match v.get("command").and_then(Value::as_str) {
        Some("probe") => {
            let p: ProbeReport = serde_json::from_value(v.clone()).map_err(invalid)?;
            Ok(FleetRow::from_report(input, &JobReport::Probe(Box::new(p))))
        }
        Some("trace") => {
            let t: TraceReport = serde_json::from_value(v.clone()).map_err(invalid)?;
            Ok(FleetRow::from_report(input, &JobReport::Trace(Box::new(t))))
        }
        Some("sweep") => {
            let message = v
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("did not run")
                .to_string();
            Ok(FleetRow::invalid(input, message))
        }
        other => Err(format!(
            "unknown command {other:?} (expected probe, trace or sweep)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_and_the_last_line_of_a_target_wins() {
        let dir = std::env::temp_dir().join(format!("mxtrace-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.jsonl");
        let bad = r#"{"schema_version":1,"command":"sweep","version":"0","input":"x y","error":{"kind":"input","message":"not a host"}}"#;
        std::fs::write(&a, format!("{bad}\n\n{bad}\n")).unwrap();
        assert!(is_sweep_output(&a));
        let r = read(std::slice::from_ref(&a)).unwrap();
        assert_eq!((r.targets(), r.invalid, r.repeated), (1, 1, 1));
        assert_eq!(r.rows[0].summary, "not a host");
        let b = dir.join("b.jsonl");
        std::fs::write(&b, "{\"schema_version\":9,\"input\":\"x\"}\n").unwrap();
        let e = read(&[a.clone(), b.clone()]).unwrap_err().to_string();
        assert!(
            e.ends_with("b.jsonl:1: schema_version 9 is not one this mxtrace reads (it reads 1)"),
            "{e}"
        );
        std::fs::write(&b, "{\n  \"schema_version\": 1\n}\n").unwrap();
        assert!(!is_sweep_output(&b));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
