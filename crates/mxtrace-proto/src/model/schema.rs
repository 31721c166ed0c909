//! The JSON Schema (draft 2020-12) of every command's JSON output, derived from the model types
//! (schemars reads their serde attributes and doc comments) with the envelope that
//! `mxtrace_render::json` writes around them. docs/schema/COMMAND.schema.json are these,
//! checked in and compared with what the types generate by tests/json_schema.rs, which writes
//! them again with `MXTRACE_WRITE_SCHEMAS=1`.
//!
//! The schemas leave objects open: a new field does not change `SCHEMA_VERSION`, so an older
//! schema must still accept a newer result.

use super::demo::DemoReport;
use super::diff::DiffReport;
use super::fleet::FleetReport;
use super::headers::HeadersReport;
use super::posture::PostureReport;
use super::roundtrip::RoundtripReport;
use super::sweep::Record;
use super::watch::WatchLine;
use super::{Explanation, ProbeReport, RunReport, TraceReport, SCHEMA_VERSION};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{json, Value};

/// What precedes the body in the JSON (`mxtrace_render::json`).
#[derive(Debug, Clone, Copy)]
enum Envelope {
    /// `schema_version`, `command` (one of these) and `version`.
    Result(&'static [&'static str]),
    /// `schema_version` only (`explain`).
    Bare,
}

/// One command's JSON output.
struct Output {
    command: &'static str,
    envelope: Envelope,
    description: &'static str,
    body: fn() -> Schema,
}

const OUTPUTS: [Output; 12] = [
    Output {
        command: "probe",
        envelope: Envelope::Result(&["probe"]),
        description: "`mxtrace probe --json`: one endpoint from connect to QUIT, every stage \
            with its reply, timing and diagnosis, the TLS report and the verdict.",
        body: root::<ProbeReport>,
    },
    Output {
        command: "trace",
        envelope: Envelope::Result(&["trace"]),
        description: "`mxtrace trace --json`: a domain's mail path: its MX hosts and their \
            addresses, walked as a sending MTA walks them, each probe and the verdict.",
        body: root::<TraceReport>,
    },
    Output {
        command: "run",
        envelope: Envelope::Result(&["run"]),
        description: "`mxtrace run --json`: the hops of a scenario file, each a trace or \
            probes, and every expectation checked.",
        body: root::<RunReport>,
    },
    Output {
        command: "diff",
        envelope: Envelope::Result(&["diff"]),
        description: "`mxtrace diff --json`: what changed between two results (regressions, \
            improvements, changes) and whether any change is a regression.",
        body: root::<DiffReport>,
    },
    Output {
        command: "demo",
        envelope: Envelope::Result(&["demo"]),
        description: "`mxtrace demo --json`: each check of the lab's scenarios and faults, what \
            it expected and what mxtrace reported.",
        body: root::<DemoReport>,
    },
    Output {
        command: "sweep",
        envelope: Envelope::Result(&["probe", "trace", "sweep"]),
        description: "One line of `mxtrace sweep`'s JSONL output: the normalised target in \
            `input` with the `probe` or `trace` result (`command` says which), or, with \
            `command` `sweep`, the `error` that kept the target from running.",
        body: root::<Record>,
    },
    Output {
        command: "watch",
        envelope: Envelope::Result(&["watch"]),
        description: "One line of `mxtrace watch --json`: a probe (`type` `probe`), a change \
            (`type` `event`) or, last, the change-window report (`type` `report`), which is \
            also what `--report FILE` writes.",
        body: root::<WatchLine>,
    },
    Output {
        command: "roundtrip",
        envelope: Envelope::Result(&["roundtrip"]),
        description: "`mxtrace roundtrip --json`: a probe message sent, looked for in a mailbox \
            over IMAP, and what its delivered copy (or bounce) says: delivery and its times, \
            the path, the receiving side's verdicts, findings, cleanup and the IMAP dialogue.",
        body: root::<RoundtripReport>,
    },
    Output {
        command: "report",
        envelope: Envelope::Result(&["report"]),
        description: "`mxtrace report --json` over a sweep's JSON lines: the fleet's counts \
            (passed, failed by category, invalid, repeated) and a row per target (verdict, \
            category, time, TLS, the certificate that expires first).",
        body: root::<FleetReport>,
    },
    Output {
        command: "dns",
        envelope: Envelope::Result(&["dns"]),
        description: "`mxtrace dns --json`: a domain's mail posture, one section per check \
            (SPF, DMARC, DKIM, MTA-STS, TLS-RPT, DANE, reverse DNS, blocklists).",
        body: root::<PostureReport>,
    },
    Output {
        command: "headers",
        envelope: Envelope::Result(&["headers"]),
        description: "`mxtrace headers --json`: a delivered message's Received chain, \
            authentication results and Exchange stamps, or a non-delivery report's recipients, \
            each explained.",
        body: root::<HeadersReport>,
    },
    Output {
        command: "explain",
        envelope: Envelope::Bare,
        description: "`mxtrace explain --json`: a pasted SMTP reply classified: class, \
            category, layer, cause and next steps.",
        body: root::<Explanation>,
    },
];

/// The schema of one command's JSON output, as docs/schema holds it.
#[derive(Debug, Clone)]
pub struct CommandSchema {
    pub command: &'static str,
    pub schema: Value,
}

impl CommandSchema {
    /// Its file name in docs/schema: `probe.schema.json`.
    pub fn file_name(&self) -> String {
        file_name(self.command)
    }

    /// The file's text: pretty JSON with a final newline.
    pub fn to_text(&self) -> Result<String, serde_json::Error> {
        let mut text = serde_json::to_string_pretty(&self.schema)?;
        text.push('\n');
        Ok(text)
    }
}

/// `probe.schema.json` for `probe`.
pub fn file_name(command: &str) -> String {
    format!("{command}.schema.json")
}

/// The `$id` of a command's schema. A URN: the schemas are published with the source
/// (docs/schema), not at a URL of their own.
pub fn id(command: &str) -> String {
    format!("urn:mxtrace:schema:{SCHEMA_VERSION}:{command}")
}

/// Every command's schema, in the order of the documentation.
pub fn all() -> Vec<CommandSchema> {
    OUTPUTS
        .iter()
        .map(|o| CommandSchema {
            command: o.command,
            schema: describe(o),
        })
        .collect()
}

/// The schema of what serde writes for `T`, its named parts under `$defs`.
fn root<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// The body's schema with the envelope's fields added and the command's identity.
fn describe(o: &Output) -> Value {
    let mut schema = (o.body)().to_value();
    unwrap_descriptions(&mut schema);
    let Some(obj) = schema.as_object_mut() else {
        return schema;
    };
    obj.insert("$id".into(), id(o.command).into());
    obj.insert("title".into(), format!("mxtrace {} JSON", o.command).into());
    obj.insert("description".into(), o.description.into());
    let mut fields = vec![(
        "schema_version",
        json!({
            "description": "The version of the JSON shape: it changes when a field is renamed \
                or removed or its meaning changes, never for a new field.",
            "const": SCHEMA_VERSION,
        }),
    )];
    if let Envelope::Result(commands) = o.envelope {
        let command = match commands {
            [one] => json!({ "const": one }),
            many => json!({ "enum": many }),
        };
        fields.push(("command", command));
        fields.push((
            "version",
            json!({ "description": "The mxtrace version that wrote it.", "type": "string" }),
        ));
    }
    let envelope: Vec<Value> = fields.iter().map(|(k, _)| (*k).into()).collect();
    if let Some(props) = obj
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        props.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
    }
    let required = obj.entry("required").or_insert_with(|| json!([]));
    if let Some(list) = required.as_array_mut() {
        list.splice(0..0, envelope);
    }
    schema
}

/// Descriptions come from doc comments, wrapped for the source: one line per paragraph here.
fn unwrap_descriptions(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, field) in o.iter_mut() {
                match field {
                    Value::String(s) if k == "description" => {
                        *s = s
                            .split("\n\n")
                            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(field),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}
