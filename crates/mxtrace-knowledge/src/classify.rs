//! The classifier: weighs the evidence a reply carries, in a fixed precedence, and says how sure
//! it is (docs/diagnosis.md "How a reply is classified").
//!
//! 1. A vendor row (tables.rs MARKERS, then MICROSOFT's enhanced codes): high confidence.
//! 2. The enhanced status code, by class, subject and detail (registry.rs, the IANA registry).
//! 3. Word families (families.rs): PHRASES that name one cause, then WORDS that lean one way,
//!    each row weighed by the stage the reply answered; then what the session knows
//!    (`SessionFacts`: whether the server claims the recipient's domain).
//! 4. The basic code and the stage alone (tables.rs RFC5321_TABLE).
//!
//! Conflicts, one rule: **a phrase that names one cause overrides the code; a code overrides
//! single words unless the code is generic (X.0.0, X.7.1 ...), and any disagreement lowers the
//! confidence to medium with the loser as the runner-up.** Nothing decisive: `other`, low
//! confidence, the most common reading of the bare refusal as the runner-up.
//!
//! Confidence, one rule: **high needs agreeing evidence and nothing against it** (a vendor
//! row; a specific code no word contradicts; words a code says too, `corroborate`); a reply
//! that names a second cause is medium whatever decided (`contradict`).
//!
//! Replies are hostile input: the text is bounded before matching and nothing here indexes
//! into it.

use super::advice::{self, ESCALATE, RETRY};
use super::families::{at_home, PHRASES, VAGUE, WORDS};
use super::registry::{self, REGISTRY};
use super::rules::{BasicRule, CodeRule, TextRule};
use super::tables::{MARKERS, MICROSOFT, RFC5321_TABLE};
use super::{class_of, Category, Class, Confidence, Layer};
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
    /// The IANA enhanced status code registry.
    Registry,
    /// A phrase that names one cause.
    Phrase,
    /// A word that leans one way.
    Keyword,
    /// Basic code and stage (RFC 5321).
    BasicCode,
    /// Nothing decisive.
    Unknown,
}

/// What the session knows beyond the reply, passed by the probe (probe/verdict.rs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionFacts {
    /// Whether the recipient's domain is one the server claims: a name in its banner or EHLO
    /// reply, in its certificate, or the domain whose MX led here. None: not known.
    pub recipient_domain_claimed: Option<bool>,
}

/// The classifier's verdict on one reply, with the document behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub class: Class,
    pub category: Category,
    pub confidence: Confidence,
    pub runner_up: Option<Category>,
    pub layer: Layer,
    pub cause: String,
    pub next_steps: Vec<String>,
    pub source: &'static str,
    pub tier: Tier,
}

/// Classifies one reply received at `stage` (None when unknown), knowing nothing else.
pub fn classify_reply(stage: Option<Stage>, reply: &Reply) -> Finding {
    classify_in(stage, reply, SessionFacts::default())
}

/// Classifies one reply with what the session knows.
pub fn classify_in(stage: Option<Stage>, reply: &Reply, facts: SessionFacts) -> Finding {
    let Some(odd) = mismatched_enhanced(reply) else {
        return classify_with(stage, reply, reply.enhanced, facts);
    };
    // Kept, read under the basic code's class (which decides, RFC 5321 4.2.1), and flagged.
    let digit = u8::try_from(reply.first_digit()).unwrap_or(odd.class);
    let kept = EnhancedCode {
        class: digit,
        ..odd
    };
    let mut f = classify_with(stage, reply, Some(kept), facts);
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

/// One piece of evidence that can decide.
#[derive(Clone, Copy)]
enum Evidence {
    Text(&'static TextRule, Tier),
    Code(&'static CodeRule, EnhancedCode, Tier),
    Basic(&'static BasicRule),
}

impl Evidence {
    fn category(self) -> Option<Category> {
        match self {
            Evidence::Text(r, _) => Some(r.category),
            Evidence::Code(r, ..) => r.category,
            Evidence::Basic(b) => b.category,
        }
        .filter(|c| *c != Category::Accepted)
    }
}

/// The evidence that decided, how sure, and the next reading.
struct Verdict {
    evidence: Option<Evidence>,
    confidence: Confidence,
    runner_up: Option<Category>,
}

impl Verdict {
    fn new(evidence: Evidence, confidence: Confidence, runner_up: Option<Category>) -> Verdict {
        let runner_up = runner_up.filter(|r| Some(*r) != evidence.category());
        Verdict {
            evidence: Some(evidence),
            confidence,
            runner_up,
        }
    }
}

fn classify_with(
    stage: Option<Stage>,
    reply: &Reply,
    enhanced: Option<EnhancedCode>,
    facts: SessionFacts,
) -> Finding {
    let class = class_of(reply);
    let basic = basic_row(reply.code, stage);
    if class == Class::Success {
        return accepted(class, stage, reply.code, basic);
    }
    let input = Input {
        stage,
        code: reply.code,
        enhanced,
        basic,
    };
    decide(class, &input, &lowered(&reply.text()), facts)
}

/// Classifies what a bounce says without an SMTP reply: its status code (RFC 3464 `Status:`,
/// or None when it gives none) and its prose. The class comes from the status; without one the
/// failure is taken as permanent (the bounce says the message was not delivered).
pub fn classify_status(stage: Option<Stage>, status: Option<EnhancedCode>, text: &str) -> Finding {
    let class = match status.map(|s| s.class) {
        Some(2) => Class::Success,
        Some(4) => Class::Transient,
        _ => Class::Permanent,
    };
    let code = match class {
        Class::Success => 250,
        Class::Transient => 450,
        Class::Permanent => 550,
    };
    if class == Class::Success {
        return accepted(class, stage, code, None);
    }
    // No reply code was given, so no RFC 5321 row speaks: `basic` stays empty.
    let input = Input {
        stage,
        code,
        enhanced: status,
        basic: None,
    };
    decide(class, &input, &lowered(text), SessionFacts::default())
}

/// What one classification reads besides the text.
struct Input {
    stage: Option<Stage>,
    code: u16,
    enhanced: Option<EnhancedCode>,
    basic: Option<&'static BasicRule>,
}

fn decide(class: Class, input: &Input, text: &str, facts: SessionFacts) -> Finding {
    let Input {
        stage,
        code,
        enhanced,
        basic,
    } = *input;
    let vendor = MARKERS
        .iter()
        .find(|r| r.matches(text, stage, code))
        .map(|r| Evidence::Text(r, Tier::Marker))
        .or_else(|| {
            let e = enhanced?;
            let r = code_row(MICROSOFT, e, text, stage).filter(|r| r.category.is_some())?;
            Some(Evidence::Code(r, e, Tier::Microsoft))
        });
    let mut verdict = match vendor {
        Some(v) => Verdict::new(v, Confidence::High, None),
        None => corroborate(weigh(stage, code, enhanced, text, basic), input, text),
    };
    contradict(&mut verdict, input, text);
    apply_facts(&mut verdict, stage, facts);
    render(class, stage, code, enhanced, basic, verdict)
}

/// What each kind of evidence read in one reply (steps 2 to 4 of the precedence).
struct Readings {
    /// A PHRASES row that names a cause.
    phrase: Option<Evidence>,
    /// A code that is not generic, or a basic code that is definitional at this stage.
    specific: Option<Evidence>,
    /// A single word that leans one way.
    word: Option<Evidence>,
    /// The registry's reading of the enhanced code, generic or not.
    coded: Option<Evidence>,
    /// The basic code at this stage (RFC 5321).
    stage_alone: Option<Evidence>,
    /// The closest reading of a bare refusal, for an `other`.
    vague: Option<Category>,
}

/// Steps 2 to 4 of the precedence, with the conflict rule (module docs).
fn weigh(
    stage: Option<Stage>,
    code: u16,
    enhanced: Option<EnhancedCode>,
    text: &str,
    basic: Option<&'static BasicRule>,
) -> Verdict {
    settle(&read(stage, code, enhanced, text, basic), stage)
}

/// What each kind of evidence reads in one reply.
fn read(
    stage: Option<Stage>,
    code: u16,
    enhanced: Option<EnhancedCode>,
    text: &str,
    basic: Option<&'static BasicRule>,
) -> Readings {
    let registry = enhanced.and_then(|e| Some((code_row(REGISTRY, e, text, stage)?, e)));
    let coded = registry
        .map(|(r, e)| Evidence::Code(r, e, Tier::Registry))
        .filter(|c| c.category().is_some());
    let specific = coded.filter(|_| registry.is_some_and(|(r, _)| !r.generic));
    // Words are read without the codes' own documented meanings: a server that just repeats
    // "Delivery not authorized, message refused" for 5.7.1 has said nothing more.
    let words = strip_meanings(text.to_string(), enhanced, basic);
    // A phrase that names a cause anywhere in PHRASES beats a PHRASES row that matched on a
    // single word ("spoofed" must not hide "anti-spoofing policy"); such a row counts as a
    // word, still before the WORDS table.
    let phrase = PHRASES
        .iter()
        .find(|r| r.matches(&words, stage, code) && r.names_a_cause(&words));
    let word = match phrase {
        Some(_) => None,
        None => first(PHRASES, &words, stage, code).or_else(|| first(WORDS, &words, stage, code)),
    };
    let stage_alone = basic
        .map(Evidence::Basic)
        .filter(|b| b.category().is_some());
    // A basic code that means one thing at this stage by definition (RFC 4954, RFC 3207)
    // counts as a specific code.
    let sure = stage_alone.filter(|b| matches!(b, Evidence::Basic(r) if r.sure));
    Readings {
        phrase: phrase.map(|r| Evidence::Text(r, Tier::Phrase)),
        specific: specific.or(sure),
        word: word.map(|r| Evidence::Text(r, Tier::Keyword)),
        coded,
        stage_alone,
        vague: first(VAGUE, &words, stage, code).map(|r| r.category),
    }
}

/// The conflict rule over what was read (module docs).
fn settle(r: &Readings, stage: Option<Stage>) -> Verdict {
    let fallback = r.coded.or(r.stage_alone).and_then(Evidence::category);
    let usual = r.stage_alone.and_then(Evidence::category);
    match (r.phrase, r.specific, r.word) {
        (Some(p), Some(c), _) if p.category() != c.category() => {
            Verdict::new(p, Confidence::Medium, c.category())
        }
        // Agreement: the code's row says it with the code's documented meaning.
        (Some(_), Some(c), _) => Verdict::new(c, Confidence::High, None),
        (Some(p), _, _) => Verdict::new(p, Confidence::High, fallback),
        // The code wins over a word, but a word that reads otherwise is a disagreement: servers
        // reuse specific codes for other causes (5.2.1 for unknown users, 5.1.1 for anything).
        (None, Some(c), w) => {
            let other = w
                .and_then(Evidence::category)
                .filter(|w| Some(*w) != c.category());
            let sure = match other {
                Some(_) => Confidence::Medium,
                None => Confidence::High,
            };
            Verdict::new(c, sure, other)
        }
        (None, None, Some(w)) if w.category() == r.coded.and_then(Evidence::category) => {
            Verdict::new(w, Confidence::High, usual)
        }
        // A single word, uncorroborated: "probably" where its cause is normally answered
        // (families.rs `HOME`), a guess elsewhere.
        (None, None, Some(w)) => {
            let sure = match w.category().is_some_and(|c| at_home(c, stage)) {
                true => Confidence::Medium,
                false => Confidence::Low,
            };
            Verdict::new(w, sure, fallback)
        }
        (None, None, None) => nothing_decisive(r),
    }
}

/// No words: the code's reading, or the stage's, or nothing.
fn nothing_decisive(r: &Readings) -> Verdict {
    match r.coded.or(r.stage_alone) {
        Some(Evidence::Basic(b)) if b.sure => {
            Verdict::new(Evidence::Basic(b), Confidence::High, None)
        }
        // The basic code and the stage alone say what is usual there, not what happened.
        Some(e @ Evidence::Basic(_)) => Verdict::new(e, Confidence::Low, None),
        Some(e) => Verdict::new(
            e,
            Confidence::Medium,
            r.stage_alone.and_then(Evidence::category),
        ),
        None => Verdict {
            evidence: None,
            confidence: Confidence::Low,
            runner_up: r.vague,
        },
    }
}

/// Words decide with high confidence only when a code agrees: the enhanced code's registry
/// reading, or the basic code's reading at this stage (RFC 5321: a 550 to RCPT is a mailbox
/// refusal). Words alone, even at the stage where their cause is answered, are "probably"
/// right (medium), the code's reading, if any, the runner-up.
fn corroborate(mut v: Verdict, input: &Input, text: &str) -> Verdict {
    let Input {
        stage,
        enhanced,
        basic,
        ..
    } = *input;
    let words = v.evidence.filter(|e| {
        matches!(e, Evidence::Text(_, Tier::Phrase | Tier::Keyword))
            && v.confidence == Confidence::High
    });
    let Some(e) = words else {
        return v;
    };
    let Some(category) = e.category() else {
        return v;
    };
    let code = enhanced
        .and_then(|c| code_row(REGISTRY, c, text, stage))
        .and_then(|r| r.category);
    let basic = basic.and_then(|b| b.category);
    if code == Some(category) || basic == Some(category) {
        return v;
    }
    v.confidence = Confidence::Medium;
    v.runner_up = v.runner_up.or(code).or(basic).filter(|r| *r != category);
    v
}

/// High confidence also needs nothing against it: a reply that names a second cause (a
/// phrase of another family, read as the word families read it) is only "probably" what
/// decided, whatever decided, with that cause the runner-up. A "service unavailable" is not
/// such a cause: servers put it before the refusal itself (Postfix's `554 5.7.1 Service
/// unavailable; Client host [...] blocked using ...`).
fn contradict(v: &mut Verdict, input: &Input, text: &str) {
    if v.confidence != Confidence::High {
        return;
    }
    let Some(decided) = v.evidence.and_then(Evidence::category) else {
        return;
    };
    let words = strip_meanings(text.to_string(), input.enhanced, input.basic);
    let rival = PHRASES
        .iter()
        .filter(|r| r.matches(&words, input.stage, input.code) && r.names_a_cause(&words))
        .map(|r| r.category)
        .find(|c| *c != decided && *c != Category::ServiceUnavailable);
    if let Some(r) = rival {
        v.confidence = Confidence::Medium;
        v.runner_up = Some(r);
    }
}

/// What the session knows, at RCPT: a server that does not claim the recipient's domain and
/// refuses without giving a reason is probably refusing to relay; one that claims it and says
/// "relay" is probably missing the domain from its own accepted domains (medium confidence,
/// recipient_unknown as the runner-up).
fn apply_facts(v: &mut Verdict, stage: Option<Stage>, facts: SessionFacts) {
    if stage != Some(Stage::RcptTo) {
        return;
    }
    let category = v.evidence.and_then(Evidence::category);
    match facts.recipient_domain_claimed {
        // Only a reply that gave no reason: a hosted domain's MX rarely carries its name.
        Some(false) if category.is_none() => {
            v.runner_up = category.or(v.runner_up);
            v.evidence = Some(Evidence::Text(
                &super::tables::RELAY_BY_FACTS,
                Tier::Keyword,
            ));
            v.confidence = Confidence::Medium;
        }
        Some(true) if category == Some(Category::RelayDenied) => {
            v.confidence = Confidence::Medium;
            v.runner_up = Some(Category::RecipientUnknown);
        }
        _ => {}
    }
}

fn first(
    table: &'static [TextRule],
    text: &str,
    stage: Option<Stage>,
    code: u16,
) -> Option<&'static TextRule> {
    table.iter().find(|r| r.matches(text, stage, code))
}

fn accepted(class: Class, stage: Option<Stage>, code: u16, basic: Option<&BasicRule>) -> Finding {
    let meaning = basic.map_or("positive reply", |b| b.meaning);
    let what = stage.map_or_else(|| "the command".to_string(), |s| s.to_string());
    finding(
        class,
        Category::Accepted,
        None,
        stage,
        format!("The server accepted {what} ({code} {meaning})."),
        &[],
        basic.map_or(super::tables::RFC5321, |b| b.source),
        Tier::Positive,
    )
}

/// Turns the verdict into words: "probably" and the runner-up when not sure.
fn render(
    class: Class,
    stage: Option<Stage>,
    code: u16,
    enhanced: Option<EnhancedCode>,
    basic: Option<&BasicRule>,
    v: Verdict,
) -> Finding {
    let Some(mut f) = v.evidence.and_then(|e| from_evidence(class, stage, e)) else {
        let mut f = unknown(class, stage, code, enhanced, basic);
        if let Some(r) = v.runner_up {
            f.cause.push_str(&format!(
                " The closest reading is {r}, but the reply does not say so clearly."
            ));
        }
        f.runner_up = v.runner_up;
        return f;
    };
    f.confidence = v.confidence;
    f.runner_up = v.runner_up;
    if v.confidence != Confidence::High {
        f.cause = format!("Probably {}: {}", f.category, f.cause);
        if let Some(r) = v.runner_up {
            f.cause.push_str(&format!(" Less likely: {r}."));
        }
    }
    f
}

fn from_evidence(class: Class, stage: Option<Stage>, e: Evidence) -> Option<Finding> {
    let category = e.category()?;
    let f = match e {
        Evidence::Text(r, tier) => finding(
            class,
            category,
            r.layer,
            stage,
            r.cause.to_string(),
            r.steps,
            r.source,
            tier,
        ),
        Evidence::Code(r, code, tier) => {
            let cause = if r.cause.is_empty() {
                advice::generic_cause(category).to_string()
            } else {
                format!("{code} ({}): {}", r.meaning, r.cause)
            };
            finding(
                class, category, r.layer, stage, cause, r.steps, r.source, tier,
            )
        }
        Evidence::Basic(b) => {
            let cause = if b.cause.is_empty() {
                advice::generic_cause(category).to_string()
            } else {
                b.cause.to_string()
            };
            let tier = Tier::BasicCode;
            finding(
                class, category, b.layer, stage, cause, b.steps, b.source, tier,
            )
        }
    };
    Some(f)
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
        if let Some(r) = registry::meaning(e.subject, e.detail) {
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
    let mut f = finding(
        class,
        Category::Other,
        None,
        stage,
        cause,
        &[],
        source,
        Tier::Unknown,
    );
    f.confidence = Confidence::Low;
    f
}

fn code_row(
    table: &'static [CodeRule],
    e: EnhancedCode,
    text: &str,
    stage: Option<Stage>,
) -> Option<&'static CodeRule> {
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
        confidence: Confidence::High,
        runner_up: None,
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

/// The prose of a reply, for the word families: without the registry meaning of the enhanced
/// code, the RFC 5321 meaning of the basic code, and the identifiers a server echoes
/// (addresses, `<...>` and `[...]` tokens, a URL's query), whose letters are not words
/// ("spam@", "?ip=", "<unknown[192.0.2.1]>"). Vendor rows read the whole text.
fn strip_meanings(text: String, e: Option<EnhancedCode>, basic: Option<&BasicRule>) -> String {
    // A URL's host and path can name who refused (a blocklist's site); its query is data.
    let mut text = text
        .split_whitespace()
        .filter(|t| !is_identifier(t))
        .map(|t| t.split('?').next().unwrap_or(t))
        .collect::<Vec<_>>()
        .join(" ");
    let registry = e.and_then(|e| registry::meaning(e.subject, e.detail));
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

fn is_identifier(token: &str) -> bool {
    token.contains('@')
        || (token.starts_with('<') && token.trim_end_matches([':', ',', '.', ';']).ends_with('>'))
        || (token.starts_with('[') && token.trim_end_matches([':', ',', '.', ';']).ends_with(']'))
}

/// Lower-cased copy of at most MAX_TEXT bytes, cut on a character boundary.
fn lowered(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("").to_lowercase()
}
