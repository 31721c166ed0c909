//! Every JSON the tests see, checked against the published schemas (docs/schema, which
//! tests/json_schema.rs keeps equal to what the model types generate). Included by bin.rs, so
//! every `--json` run of the binary is checked; tests/json_schema.rs checks the snapshots.
//!
//! The published schemas leave objects open (a new field does not change `schema_version`),
//! so a field they do not describe would pass them. Here every object is closed
//! (`unevaluatedProperties: false`): a field the types did not declare fails the test.

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The commands whose output has a schema: docs/schema/COMMAND.schema.json.
pub const COMMANDS: [&str; 12] = [
    "probe",
    "trace",
    "run",
    "diff",
    "demo",
    "sweep",
    "watch",
    "roundtrip",
    "report",
    "dns",
    "headers",
    "explain",
];

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema")
}

/// The checked-in schema of a command, as published.
pub fn published(command: &str) -> Value {
    let path = dir().join(format!("{command}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks `value` against the closed schema of `command`; panics naming the first violation's
/// path in the JSON and in the schema.
pub fn check(command: &str, value: &Value, what: &str) {
    static VALIDATORS: OnceLock<HashMap<&'static str, jsonschema::Validator>> = OnceLock::new();
    let validators = VALIDATORS.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|c| (*c, validator(closed(published(c)), c)))
            .collect()
    });
    let v = validators
        .get(command)
        .unwrap_or_else(|| panic!("no schema for the output of `{command}`"));
    if let Some(violation) = first_violation(v, value) {
        panic!("{what}: the JSON does not match docs/schema/{command}.schema.json {violation}");
    }
}

/// `at /stages/3/reply: MESSAGE (schema: PATH)` for the first error, if any; the message is cut
/// short (it may quote the whole object).
pub fn first_violation(v: &jsonschema::Validator, value: &Value) -> Option<String> {
    let e = v.iter_errors(value).next()?;
    let at = match e.instance_path().as_str() {
        "" => "/".to_string(),
        p => p.to_string(),
    };
    let mut message = e.to_string();
    if let Some((cut, _)) = message.char_indices().nth(400) {
        message.truncate(cut);
        message.push_str(" ...");
    }
    Some(format!(
        "at {at}: {message} (schema: {})",
        e.schema_path().as_str()
    ))
}

/// Checks a fragment of a command's output: the value of its top-level field `field`.
pub fn check_field(command: &str, field: &str, value: &Value, what: &str) {
    let mut schema = closed(published(command));
    let node = schema["properties"][field].clone();
    assert!(!node.is_null(), "{command} has no field {field}");
    let mut root = node.as_object().cloned().unwrap_or_default();
    root.insert("$defs".into(), schema["$defs"].take());
    let v = validator(Value::Object(root), command);
    if let Some(violation) = first_violation(&v, value) {
        panic!("{what}: `{field}` does not match docs/schema/{command}.schema.json {violation}");
    }
}

/// What the binary printed for `args`, checked when it is JSON: `--json` or `--format json`
/// (one object), or `sweep` and `watch --json` (one object a line). Other output, and no
/// output, pass.
pub fn check_output(args: &[&str], stdout: &str) {
    let Some(command) = json_command(args) else {
        return;
    };
    let what = format!("mxtrace {}", args.join(" "));
    if command == "sweep" || command == "watch" {
        for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
            check(command, &parse(line, &what), &what);
        }
    } else if !stdout.trim().is_empty() {
        check(command, &parse(stdout, &what), &what);
    }
}

/// The command whose schema `args` print, when they print JSON.
pub fn json_command(args: &[&str]) -> Option<&'static str> {
    if args
        .iter()
        .any(|a| matches!(*a, "-h" | "--help" | "-V" | "--version"))
    {
        return None;
    }
    let command = args
        .iter()
        .find_map(|a| COMMANDS.iter().find(|c| *c == a))
        .copied()?;
    let json = args.iter().enumerate().any(|(i, a)| {
        *a == "--json"
            || *a == "--format=json"
            || (*a == "--format" && args.get(i + 1) == Some(&"json"))
    });
    // `sweep` prints readable lines unless asked for JSON, as every other command.
    json.then_some(command)
}

fn parse(text: &str, what: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}):\n{text}"))
}

fn validator(schema: Value, command: &str) -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("docs/schema/{command}.schema.json does not compile: {e}"))
}

/// The schema with every object closed. An object whose fields come partly from branches
/// applied in place (`anyOf` beside `properties`: sweep's `input` beside a flattened report)
/// closes once, where the branches' fields are evaluated too; the branches it applies stay
/// open (their definitions are copied as `NAME__open`), or they would refuse each other's
/// fields.
pub fn closed(mut schema: Value) -> Value {
    close(&mut schema);
    let mut defs = schema
        .get_mut("$defs")
        .map(Value::take)
        .and_then(|d| d.as_object().cloned())
        .unwrap_or_default();
    let mut extra = Map::new();
    open_branches_under_properties(&mut schema, &defs, &mut extra);
    let names: Vec<String> = defs.keys().cloned().collect();
    for name in names {
        let mut d = defs[&name].clone();
        open_branches_under_properties(&mut d, &defs, &mut extra);
        defs.insert(name, d);
    }
    defs.extend(extra);
    schema["$defs"] = Value::Object(defs);
    schema
}

const IN_PLACE: [&str; 3] = ["anyOf", "oneOf", "allOf"];

/// Adds `unevaluatedProperties: false` to every schema with `properties`, at any depth.
fn close(node: &mut Value) {
    match node {
        Value::Object(o) => {
            if o.contains_key("properties") && !o.contains_key("unevaluatedProperties") {
                o.insert("unevaluatedProperties".into(), json!(false));
            }
            o.values_mut().for_each(close);
        }
        Value::Array(a) => a.iter_mut().for_each(close),
        _ => {}
    }
}

/// In every object that has `properties` and in-place branches, opens the branches.
fn open_branches_under_properties(
    node: &mut Value,
    defs: &Map<String, Value>,
    extra: &mut Map<String, Value>,
) {
    match node {
        Value::Object(o) => {
            if o.contains_key("properties") {
                for key in IN_PLACE {
                    if let Some(Value::Array(branches)) = o.get_mut(key) {
                        branches.iter_mut().for_each(|b| open(b, defs, extra));
                    }
                }
            }
            o.values_mut()
                .for_each(|v| open_branches_under_properties(v, defs, extra));
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|v| open_branches_under_properties(v, defs, extra)),
        _ => {}
    }
}

/// Opens a branch applied in place: its own object and the branches it applies in turn; the
/// objects inside its fields stay closed.
fn open(branch: &mut Value, defs: &Map<String, Value>, extra: &mut Map<String, Value>) {
    let Value::Object(o) = branch else { return };
    o.remove("unevaluatedProperties");
    if let Some(Value::String(r)) = o.get_mut("$ref") {
        if let Some(name) = r.strip_prefix("#/$defs/").map(str::to_string) {
            let open_name = format!("{name}__open");
            if !extra.contains_key(&open_name) {
                let mut copy = defs.get(&name).cloned().unwrap_or(Value::Null);
                extra.insert(open_name.clone(), Value::Null);
                open(&mut copy, defs, extra);
                extra.insert(open_name.clone(), copy);
            }
            *r = format!("#/$defs/{open_name}");
        }
    }
    for key in IN_PLACE {
        if let Some(Value::Array(branches)) = o.get_mut(key) {
            branches.iter_mut().for_each(|b| open(b, defs, extra));
        }
    }
}
