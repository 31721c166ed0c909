//! JSON output: one object per run, with the schema version, the command and the mxtrace
//! version first so that stored results say what produced them and how to read them
//! (`model::Document` reads them back).

use mxtrace_proto::model::SCHEMA_VERSION;
use serde::Serialize;

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(flatten)]
    body: &'a T,
}

fn pretty<T: Serialize>(env: &Envelope<'_, T>) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(env)?;
    s.push('\n');
    Ok(s)
}

/// A command's result as pretty JSON, ending with a newline.
pub fn render<T: Serialize>(command: &str, body: &T) -> Result<String, serde_json::Error> {
    pretty(&Envelope {
        schema_version: SCHEMA_VERSION,
        command: Some(command),
        version: Some(env!("CARGO_PKG_VERSION")),
        body,
    })
}

/// A command's result on one line, with the same envelope as `render` and no newline: a
/// line of JSONL (`sweep`).
pub fn render_line<T: Serialize>(command: &str, body: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    write_line(&mut out, command, body)?;
    // serde_json writes UTF-8 only: the fallback never copies in practice.
    Ok(String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// `render_line` appended to a buffer the caller reuses (a sweep's thousands of lines).
pub fn write_line<T: Serialize>(
    out: &mut Vec<u8>,
    command: &str,
    body: &T,
) -> Result<(), serde_json::Error> {
    let envelope = Envelope {
        schema_version: SCHEMA_VERSION,
        command: Some(command),
        version: Some(env!("CARGO_PKG_VERSION")),
        body,
    };
    serde_json::to_writer(out, &envelope)
}

/// An object that is not a stored result (`explain`'s) with only the schema version added.
pub fn render_bare<T: Serialize>(body: &T) -> Result<String, serde_json::Error> {
    pretty(&Envelope {
        schema_version: SCHEMA_VERSION,
        command: None,
        version: None,
        body,
    })
}
