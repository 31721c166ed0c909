//! `mxtrace explain`'s output: the classified reply in words (codes, class, category and
//! layer, cause, numbered next steps), or the bare JSON explanation.

use mxtrace_proto::model::{Class, Confidence, Explanation, Stage};
use mxtrace_proto::smtp::reply::Reply;

const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// Concise human output: codes, class, category and layer on one line, the confidence when it
/// is not high, then cause and numbered next steps.
pub fn render_human(reply: &Reply, stage: Option<Stage>, e: &Explanation, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("{code}{s}{RESET}")
        } else {
            s.to_string()
        }
    };
    let class_color = match e.class {
        Class::Success => GREEN,
        Class::Transient => YELLOW,
        Class::Permanent => RED,
    };
    let mut codes = reply.code.to_string();
    if let Some(en) = reply.enhanced {
        codes.push(' ');
        codes.push_str(&en.to_string());
    }
    let mut out = String::new();
    out.push_str(&format!(
        "{}  {}  {}  layer {}",
        paint(BOLD, &codes),
        paint(class_color, class_name(e.class)),
        paint(BOLD, &json_name(&e.category)),
        json_name(&e.layer),
    ));
    if let Some(s) = stage {
        out.push_str(&format!("  (at {s})"));
    }
    out.push('\n');
    if e.confidence != Confidence::High {
        out.push_str(&format!("{} {}", paint(BOLD, "confidence:"), e.confidence));
        if let Some(r) = e.runner_up {
            out.push_str(&format!(" (runner-up: {r})"));
        }
        out.push('\n');
    }
    out.push_str(&format!("{} {}\n", paint(BOLD, "cause:"), e.cause));
    if !e.next_steps.is_empty() {
        out.push_str(&format!("{}\n", paint(BOLD, "next steps:")));
        for (i, step) in e.next_steps.iter().enumerate() {
            out.push_str(&format!("  {}. {step}\n", i + 1));
        }
    }
    out
}

/// `explain --json`: `schema_version`, then exactly `{ "class", "category", "confidence",
/// "runner_up", "layer", "cause", "next_steps" }` in that order (the struct's), pretty-printed
/// with a final newline.
pub fn render_json(e: &Explanation) -> Result<String, serde_json::Error> {
    crate::json::render_bare(e)
}

fn class_name(c: Class) -> &'static str {
    match c {
        Class::Success => "success",
        Class::Transient => "transient",
        Class::Permanent => "permanent",
    }
}

/// The serde name of a unit enum variant (the names the JSON output uses).
fn json_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
