//! JSON output: one object per run (DESIGN.md "Output shape"), with the command and version
//! first so that stored results say what produced them.

use serde::Serialize;

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    command: &'a str,
    version: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

/// The run as pretty JSON, ending with a newline.
pub fn render<T: Serialize>(command: &str, body: &T) -> Result<String, serde_json::Error> {
    let env = Envelope {
        command,
        version: env!("CARGO_PKG_VERSION"),
        body,
    };
    let mut s = serde_json::to_string_pretty(&env)?;
    s.push('\n');
    Ok(s)
}
