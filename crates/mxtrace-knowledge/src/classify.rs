//! The classifier: walks the tables of tables.rs in order of specificity and turns the first
//! decisive row into a finding. Replies are hostile input: the text is bounded before matching
//! and nothing here indexes into it.

use super::advice::{self, ESCALATE, RETRY};
use super::rules::{BasicRule, CodeRule};
use super::tables::{KEYWORDS, MARKERS, MICROSOFT, RFC3463_TABLE, RFC5321_TABLE};
use super::{class_of, Category, Class, Layer};
use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::reply::{EnhancedCode, Reply};
use serde::Serialize;

/// Only this much of a reply's text is matched; the markers that matter come early, and it
/// bounds the work and the lower-cased copy whatever the caller hands in.
const MAX_TEXT: usize = 8 * 1024;
/// At most this many next steps, the last being the escalation step.
const MAX_STEPS: usize = 6;

/// Which table decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 2xx/3xx: accepted, no table needed.
    Positive,
    /// A vendor-specific marker or phrase in the text.
    Marker,
    /// Microsoft Exchange Online / EOP enhanced code.
    Microsoft,
    /// RFC 3463 / IANA enhanced status code registry.
    Registry,
    /// Generic wording in the text.
    Keyword,
    /// Basic code and stage (RFC 5321).
    BasicCode,
    /// Nothing decisive.
    Unknown,
}

/// The classifier's verdict on one reply, with the document behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub class: Class,
    pub category: Category,
    pub layer: Layer,
    pub cause: String,
    pub next_steps: Vec<String>,
    pub source: &'static str,
    pub tier: Tier,
}

/// Classifies one reply received at `stage` (None when unknown).
pub fn classify_reply(stage: Option<Stage>, reply: &Reply) -> Finding {
    let Some(odd) = mismatched_enhanced(reply) else {
        return classify_with(stage, reply, reply.enhanced);
    };
    // Kept, read under the basic code's class (which decides, RFC 5321 4.2.1), and flagged.
    let digit = u8::try_from(reply.first_digit()).unwrap_or(odd.class);
    let kept = EnhancedCode {
        class: digit,
        ..odd
    };
    let mut f = classify_with(stage, reply, Some(kept));
    f.cause = format!(
        "The enhanced code {odd} contradicts the basic code {} (RFC 2034 section 4: its class must match the basic code's first digit); the basic code decides, so this is read as {kept}. {}",
        reply.code, f.cause
    );
    f
}

/// An enhanced code at the start of the reply whose class disagrees with the basic code
/// (`451 5.7.3`): the reply parser leaves such a code out of `Reply::enhanced`.
pub fn mismatched_enhanced(reply: &Reply) -> Option<EnhancedCode> {
    if reply.enhanced.is_some() || !matches!(reply.first_digit(), 2 | 4 | 5) {
        return None;
    }
    let line = reply.lines.first()?;
    let token = line.get(4..)?.split_whitespace().next()?;
    let e = EnhancedCode::parse(token.trim_end_matches([',', ';', ':']))?;
    (u16::from(e.class) != reply.first_digit()).then_some(e)
}

fn classify_with(stage: Option<Stage>, reply: &Reply, enhanced: Option<EnhancedCode>) -> Finding {
    let class = class_of(reply);
    let basic = basic_row(reply.code, stage);
    if class == Class::Success {
        let meaning = basic.map_or("positive reply", |b| b.meaning);
        let what = stage.map_or_else(|| "the command".to_string(), |s| s.to_string());
        return finding(
            class,
            Category::Accepted,
            None,
            stage,
            format!("The server accepted {what} ({} {meaning}).", reply.code),
            &[],
            basic.map_or(super::tables::RFC5321, |b| b.source),
            Tier::Positive,
        );
    }

    let text = lowered(&reply.text());

    if let Some(r) = MARKERS.iter().find(|r| r.matches(&text, stage, reply.code)) {
        return from_text(class, stage, r, Tier::Marker);
    }
    if let Some(e) = enhanced {
        if let Some(r) = code_row(MICROSOFT, e, &text, stage) {
            if let Some(f) = from_code(class, stage, e, r, Tier::Microsoft) {
                return f;
            }
        }
        if let Some(r) = code_row(RFC3463_TABLE, e, &text, stage) {
            if let Some(f) = from_code(class, stage, e, r, Tier::Registry) {
                return f;
            }
        }
    }
    // Generic wording is matched without the codes' own documented meanings: a server that
    // just repeats "Delivery not authorized, message refused" for 5.7.1 has said nothing more.
    let text = strip_meanings(text, enhanced, basic);
    if let Some(r) = KEYWORDS
        .iter()
        .find(|r| r.matches(&text, stage, reply.code))
    {
        return from_text(class, stage, r, Tier::Keyword);
    }
    if let Some(b) = basic {
        if let Some(category) = b.category.filter(|c| *c != Category::Accepted) {
            let cause = if b.cause.is_empty() {
                advice::generic_cause(category).to_string()
            } else {
                b.cause.to_string()
            };
            return finding(
                class,
                category,
                b.layer,
                stage,
                cause,
                b.steps,
                b.source,
                Tier::BasicCode,
            );
        }
    }
    unknown(class, stage, reply.code, enhanced, basic)
}

/// Nothing decisive: say what the codes mean and that the reason is not given.
fn unknown(
    class: Class,
    stage: Option<Stage>,
    code: u16,
    enhanced: Option<EnhancedCode>,
    basic: Option<&BasicRule>,
) -> Finding {
    let mut cause = String::new();
    let mut source = super::tables::RFC5321;
    if let Some(e) = enhanced {
        if let Some(r) = RFC3463_TABLE
            .iter()
            .find(|r| r.subject == e.subject && (r.detail_lo..=r.detail_hi).contains(&e.detail))
        {
            cause.push_str(&format!("{e} means \"{}\" (RFC 3463). ", r.meaning));
            source = r.source;
        }
        if e.subject == 7 && e.detail == 1 {
            cause.push_str(
                "5.7.1 alone is ambiguous (relay denied, a policy or transport rule, or a block); the text does not say which. ",
            );
        }
    }
    match basic {
        // A row for a whole class (5yz) gives the first digit's meaning, not the code's.
        Some(b) if b.is_class_only() => cause.push_str(&format!(
            "{code} is not a reply code RFC 5321 defines; its first digit {} means \"{}\" (RFC 5321 section 4.2.1). ",
            code / 100,
            b.meaning
        )),
        Some(b) => cause.push_str(&format!("{code} means \"{}\" (RFC 5321). ", b.meaning)),
        None => {}
    }
    cause.push_str(advice::generic_cause(Category::Other));
    finding(
        class,
        Category::Other,
        None,
        stage,
        cause,
        &[],
        source,
        Tier::Unknown,
    )
}

fn from_text(
    class: Class,
    stage: Option<Stage>,
    r: &super::rules::TextRule,
    tier: Tier,
) -> Finding {
    finding(
        class,
        r.category,
        r.layer,
        stage,
        r.cause.to_string(),
        r.steps,
        r.source,
        tier,
    )
}

/// A code row decides only when it names a category; `None` rows only carry the meaning.
fn from_code(
    class: Class,
    stage: Option<Stage>,
    e: EnhancedCode,
    r: &CodeRule,
    tier: Tier,
) -> Option<Finding> {
    let category = r.category.filter(|c| *c != Category::Accepted)?;
    let cause = if r.cause.is_empty() {
        advice::generic_cause(category).to_string()
    } else {
        format!("{e} ({}): {}", r.meaning, r.cause)
    };
    Some(finding(
        class, category, r.layer, stage, cause, r.steps, r.source, tier,
    ))
}

fn code_row<'a>(
    table: &'a [CodeRule],
    e: EnhancedCode,
    text: &str,
    stage: Option<Stage>,
) -> Option<&'a CodeRule> {
    table
        .iter()
        .find(|r| r.matches(e.class, e.subject, e.detail, text, stage))
}

fn basic_row(code: u16, stage: Option<Stage>) -> Option<&'static BasicRule> {
    RFC5321_TABLE.iter().find(|r| r.matches(code, stage))
}

#[allow(clippy::too_many_arguments)]
fn finding(
    class: Class,
    category: Category,
    layer: Option<Layer>,
    stage: Option<Stage>,
    cause: String,
    row_steps: &[&'static str],
    source: &'static str,
    tier: Tier,
) -> Finding {
    Finding {
        class,
        category,
        layer: layer.unwrap_or_else(|| advice::layer_of(category, stage)),
        cause,
        next_steps: merge_steps(category, row_steps, class == Class::Permanent),
        source,
        tier,
    }
}

/// The row's own steps first, then the category's, without duplicates, ending with the
/// escalation step for failures.
pub(crate) fn merge_steps(
    category: Category,
    row_steps: &[&'static str],
    permanent: bool,
) -> Vec<String> {
    let escalate = !matches!(category, Category::Accepted | Category::Greylisted);
    let room = if escalate { MAX_STEPS - 1 } else { MAX_STEPS };
    let mut out: Vec<String> = Vec::new();
    for s in row_steps.iter().chain(advice::steps_of(category)) {
        if out.len() >= room {
            break;
        }
        // "retry later" advice does not apply to a permanent reply.
        if permanent && *s == RETRY {
            continue;
        }
        if !out.iter().any(|o| o == s) {
            out.push((*s).to_string());
        }
    }
    if escalate {
        out.push(ESCALATE.to_string());
    }
    out
}

/// Removes the registry meaning of the enhanced code and the RFC 5321 meaning of the basic code
/// from the (lower-cased) text.
fn strip_meanings(mut text: String, e: Option<EnhancedCode>, basic: Option<&BasicRule>) -> String {
    let registry = e.and_then(|e| {
        RFC3463_TABLE
            .iter()
            .find(|r| r.subject == e.subject && (r.detail_lo..=r.detail_hi).contains(&e.detail))
    });
    for meaning in [registry.map(|r| r.meaning), basic.map(|b| b.meaning)]
        .into_iter()
        .flatten()
    {
        let m = meaning.to_lowercase();
        if !m.is_empty() && text.contains(&m) {
            text = text.replace(&m, " ");
        }
    }
    text
}

/// Lower-cased copy of at most MAX_TEXT bytes, cut on a character boundary.
fn lowered(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("").to_lowercase()
}
