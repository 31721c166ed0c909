//! The published JSON Schemas (docs/schema): what the model types generate, valid draft 2020-12
//! schemas, and met by every JSON snapshot. The JSON of every `--json` run of the binary is
//! checked where the tests run it (tests/support/bin.rs).
//!
//! `MXTRACE_WRITE_SCHEMAS=1 cargo test --locked --test json_schema` writes the files again.

mod support;

use mxtrace_proto::model::schema;
use serde_json::{json, Value};
use std::path::Path;
use support::bin::schema::{check, check_field, closed, dir, json_command, published, COMMANDS};

const REGENERATE: &str = "MXTRACE_WRITE_SCHEMAS=1 cargo test --locked --test json_schema";

#[test]
fn the_checked_in_schemas_are_what_the_types_generate() {
    let write = std::env::var_os("MXTRACE_WRITE_SCHEMAS").is_some_and(|v| v == "1");
    let generated = schema::all();
    let names: Vec<&str> = generated.iter().map(|s| s.command).collect();
    assert_eq!(
        names, COMMANDS,
        "tests/support/schema.rs lists every schema"
    );
    let mut stale = Vec::new();
    for s in &generated {
        let path = dir().join(s.file_name());
        let text = s.to_text().unwrap();
        if write {
            // By rename: the other tests of this file read them meanwhile.
            std::fs::create_dir_all(dir()).unwrap();
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(format!("docs/schema/{}", s.file_name()));
        }
    }
    assert!(
        stale.is_empty(),
        "{} differ from what the model types generate; regenerate them with\n  {REGENERATE}\n\
         and commit them with the change to the types",
        stale.join(", ")
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = generated.iter().map(|s| s.file_name()).collect();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "docs/schema holds only generated schemas"
    );
}

#[test]
fn every_schema_is_a_valid_draft_2020_12_schema_with_an_id() {
    for command in COMMANDS {
        let s = published(command);
        if let Err(e) = jsonschema::meta::validate(&s) {
            panic!("{command}: not a valid schema: {e}");
        }
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(s["$id"], schema::id(command));
        assert!(s["title"].as_str().is_some_and(|t| t.contains(command)));
        assert!(s["description"].as_str().is_some_and(|d| !d.is_empty()));
        // The envelope comes first in the output and is required.
        assert_eq!(s["required"][0], "schema_version", "{command}");
        assert_eq!(s["properties"]["schema_version"]["const"], 1, "{command}");
    }
}

/// Field names that the snapshots redact to a string where the output has a number
/// (tests/json_snapshots.rs), and the number put back before checking.
const NUMERIC_REDACTIONS: [&str; 5] = [
    "elapsed_ms",
    "started_ms",
    "dns_elapsed_ms",
    "port",
    "days_left",
];

/// Snapshots that hold one field of a command's JSON: (snapshot, command, field).
const FRAGMENTS: [(&str, &str, &str); 1] = [("dane__dane_dns_json", "dns", "dane")];

#[test]
fn every_json_snapshot_meets_its_schema() {
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&snapshots).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(mut value) = json_body(&text) else {
            continue;
        };
        unredact(&mut value);
        let what = path.display().to_string();
        if let Some(&(_, command, field)) = FRAGMENTS.iter().find(|f| f.0 == name) {
            check_field(command, field, &value, &what);
        } else if let Some(command) = value["command"].as_str() {
            // A sweep line says `probe` or `trace`: those have schemas of their own.
            check(command, &value, &what);
        } else if value.get("schema_version").is_some() {
            check("explain", &value, &what);
        } else {
            panic!("{what}: a JSON snapshot with no command: add it to FRAGMENTS");
        }
        checked.push(name);
    }
    checked.sort();
    // The JSON snapshots there are today; more may come, none may go unnoticed.
    for name in [
        "dane__dane_dns_json",
        "headers__eop_inbound_junk_json",
        "headers__postfix_ndr_json",
        "json_snapshots__diff_json",
        "json_snapshots__explain_json",
        "json_snapshots__probe_json",
        "json_snapshots__run_json",
        "json_snapshots__trace_json",
    ] {
        assert!(checked.iter().any(|c| c == name), "{name} was not checked");
    }
}

/// The body of an insta snapshot, when it is a JSON object.
fn json_body(snap: &str) -> Option<Value> {
    let body = snap.strip_prefix("---\n")?.split_once("\n---\n")?.1;
    serde_json::from_str::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

fn unredact(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, field) in o.iter_mut() {
                if NUMERIC_REDACTIONS.contains(&k.as_str()) && field.is_string() {
                    *field = json!(0);
                } else {
                    unredact(field);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(unredact),
        _ => {}
    }
}

/// A valid probe result and what the schema must refuse in it.
#[test]
fn the_check_refuses_what_the_schema_does_not_describe() {
    let snap = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots/json_snapshots__probe_json.snap"),
    )
    .unwrap();
    let mut good = json_body(&snap).unwrap();
    unredact(&mut good);
    check("probe", &good, "the probe snapshot");
    let validator = jsonschema::draft202012::new(&closed(published("probe"))).unwrap();
    let open = jsonschema::draft202012::new(&published("probe")).unwrap();
    type Mutation = (&'static str, fn(&mut Value));
    let cases: [Mutation; 6] = [
        ("an unknown outcome", |v| {
            v["stages"][0]["outcome"] = json!("fine")
        }),
        ("a category outside the vocabulary", |v| {
            v["verdict"]["outcome"] = json!("permanent");
            v["stages"][1]["diagnosis"] = json!({"category": "blocked", "layer": "policy",
                "scenario": null, "hop": null, "cause": "", "next_steps": []});
        }),
        ("a missing field", |v| {
            v["target"].as_object_mut().unwrap().remove("tls_mode");
        }),
        ("an enhanced code that is not one", |v| {
            v["stages"][1]["reply"]["enhanced"] = json!("5.1");
        }),
        ("another schema version", |v| v["schema_version"] = json!(2)),
        ("a field the types do not declare", |v| {
            v["tls"]["chain"][0]["pin"] = json!("x");
        }),
    ];
    for (what, mutate) in cases {
        let mut bad = good.clone();
        mutate(&mut bad);
        assert!(!validator.is_valid(&bad), "{what} passed the schema");
        if what != "a field the types do not declare" {
            assert!(!open.is_valid(&bad), "{what} passed the published schema");
        } else {
            assert!(
                open.is_valid(&bad),
                "the published schema stays open to new fields"
            );
        }
    }
    // A sweep line: the report's fields and `input` beside them, and nothing else.
    let mut line = good.clone();
    line["input"] = json!("probe 127.0.0.1:25");
    check("sweep", &line, "a sweep line");
    line["inputs"] = json!([]);
    let sweep = jsonschema::draft202012::new(&closed(published("sweep"))).unwrap();
    assert!(
        !sweep.is_valid(&line),
        "an undeclared field beside a flattened report"
    );
    let error = json!({"schema_version": 1, "command": "sweep", "version": "0.1.0",
        "input": "not a host!", "error": {"kind": "input", "message": "m"}});
    check("sweep", &error, "a sweep error line");
}

#[test]
fn the_commands_that_print_json_are_recognised() {
    assert_eq!(json_command(&["probe", "h", "--json"]), Some("probe"));
    assert_eq!(
        json_command(&["--format", "json", "trace", "d"]),
        Some("trace")
    );
    assert_eq!(json_command(&["dns", "d", "--format=json"]), Some("dns"));
    assert_eq!(json_command(&["sweep", "list.txt"]), None, "readable lines");
    assert_eq!(
        json_command(&["sweep", "list.txt", "--json"]),
        Some("sweep")
    );
    assert_eq!(json_command(&["probe", "h"]), None);
    assert_eq!(json_command(&["probe", "--help", "--json"]), None);
    assert_eq!(json_command(&["probe", "h", "--format", "nagios"]), None);
    assert_eq!(json_command(&["lab", "serve", "--json"]), None);
}
