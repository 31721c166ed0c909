//! The shape of a knowledge-table row and the matching primitives the classifier uses.
//! Every row carries the document it came from (`source`), so a verdict can be traced back.

use super::{Category, Layer};
use mxtrace_proto::model::Stage;

/// Bit for "stage unknown" (a pasted reply without `--stage`).
const UNKNOWN: u32 = 1 << 31;

/// A set of stages a row applies to. A row restricted to stages does not match a reply whose
/// stage is unknown unless it says so with `or_unknown`, because for those rows the stage is
/// what makes the verdict (554 at the banner is a refusal, at end of data it is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages(u32);

impl Stages {
    pub const ANY: Stages = Stages(u32::MAX);

    pub const fn on(list: &[Stage]) -> Stages {
        let mut bits = 0u32;
        let mut i = 0;
        // A const fn cannot use iterators; `i < list.len()` bounds the index.
        #[allow(clippy::indexing_slicing)]
        while i < list.len() {
            bits |= 1 << (list[i] as u32);
            i += 1;
        }
        Stages(bits)
    }

    pub const fn or_unknown(self) -> Stages {
        Stages(self.0 | UNKNOWN)
    }

    pub const fn and(self, other: Stages) -> Stages {
        Stages(self.0 | other.0)
    }

    pub const fn except(self, other: Stages) -> Stages {
        Stages(self.0 & !other.0)
    }

    pub fn contains(self, stage: Option<Stage>) -> bool {
        let bit = match stage {
            Some(s) => 1u32 << (s as u32),
            None => UNKNOWN,
        };
        self.0 & bit != 0
    }
}

/// Stage groups used by the tables.
pub const BANNER: Stages = Stages::on(&[Stage::Connect, Stage::Banner]);
pub const TLS: Stages = Stages::on(&[Stage::Starttls, Stage::TlsHandshake]);
pub const AUTH: Stages = Stages::on(&[Stage::Auth]);
pub const MAIL: Stages = Stages::on(&[Stage::MailFrom]);
pub const RCPT: Stages = Stages::on(&[Stage::RcptTo]);
pub const DATA: Stages = Stages::on(&[Stage::Data, Stage::EndOfData]);
pub const HELO: Stages = Stages::on(&[Stage::Ehlo, Stage::Helo, Stage::EhloTls]);

/// Which reply classes a row applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classes {
    Any,
    Transient,
    Permanent,
}

impl Classes {
    pub fn contains(self, first_digit: u16) -> bool {
        match self {
            Classes::Any => true,
            Classes::Transient => first_digit == 4,
            Classes::Permanent => first_digit == 5,
        }
    }
}

/// A row matched on the reply text (lower-cased). `any`: at least one needle must occur (empty:
/// no condition, for rows that decide on stage and class alone);
/// `also`: when not empty, at least one of these must occur too; `unless`: none may occur.
/// A needle starting with `#` must occur as a whole word (so `#rbl` does not match "herbl").
#[derive(Debug, Clone, Copy)]
pub struct TextRule {
    pub any: &'static [&'static str],
    pub also: &'static [&'static str],
    pub unless: &'static [&'static str],
    pub stages: Stages,
    pub classes: Classes,
    /// Only this basic reply code (for wording that means something else under other codes).
    pub code: Option<u16>,
    pub category: Category,
    pub layer: Option<Layer>,
    pub cause: &'static str,
    pub steps: &'static [&'static str],
    pub source: &'static str,
    /// Every needle names the cause, single words included (greylisting, a DNSBL's name,
    /// "certificate"): see `names_a_cause`.
    pub names: bool,
}

impl TextRule {
    pub const fn new(
        any: &'static [&'static str],
        category: Category,
        cause: &'static str,
        source: &'static str,
    ) -> TextRule {
        TextRule {
            any,
            also: &[],
            unless: &[],
            stages: Stages::ANY,
            classes: Classes::Any,
            code: None,
            category,
            layer: None,
            cause,
            steps: &[],
            source,
            names: false,
        }
    }
    pub const fn names(self) -> TextRule {
        TextRule {
            names: true,
            ..self
        }
    }
    pub const fn code(self, code: u16) -> TextRule {
        TextRule {
            code: Some(code),
            ..self
        }
    }
    pub const fn also(self, also: &'static [&'static str]) -> TextRule {
        TextRule { also, ..self }
    }
    pub const fn unless(self, unless: &'static [&'static str]) -> TextRule {
        TextRule { unless, ..self }
    }
    pub const fn at(self, stages: Stages) -> TextRule {
        TextRule { stages, ..self }
    }
    pub const fn only(self, classes: Classes) -> TextRule {
        TextRule { classes, ..self }
    }
    pub const fn layer(self, layer: Layer) -> TextRule {
        TextRule {
            layer: Some(layer),
            ..self
        }
    }
    pub const fn steps(self, steps: &'static [&'static str]) -> TextRule {
        TextRule { steps, ..self }
    }

    pub fn matches(&self, text: &str, stage: Option<Stage>, code: u16) -> bool {
        self.stages.contains(stage)
            && self.classes.contains(code / 100)
            && self.code.is_none_or(|c| c == code)
            && (self.any.is_empty() || self.any.iter().any(|n| has(text, n)))
            && (self.also.is_empty() || self.also.iter().any(|n| has(text, n)))
            && !self.unless.iter().any(|n| has(text, n))
    }

    /// True when what matched names a cause: a row marked `names`, a needle of several words,
    /// or a needle with a condition (`also`). A single word only leans (classify.rs weighs it as a word).
    pub fn names_a_cause(&self, text: &str) -> bool {
        self.names
            || !self.also.is_empty()
            || self
                .any
                .iter()
                .any(|n| n.trim_start_matches('#').trim().contains(' ') && has(text, n))
    }
}

/// A row keyed on the enhanced status code `class.subject.detail` with `detail` in
/// `detail_lo..=detail_hi`. `category: None` records the registry meaning but says the code
/// alone is not decisive (5.7.1, x.0.0), so the classifier moves on to the text.
#[derive(Debug, Clone, Copy)]
pub struct CodeRule {
    pub classes: Classes,
    pub subject: u16,
    pub detail_lo: u16,
    pub detail_hi: u16,
    /// When not empty, at least one must occur in the text (vendor meanings that differ from
    /// the registry's, such as Exchange Online's 5.4.1 "Access denied").
    pub text: &'static [&'static str],
    pub stages: Stages,
    pub meaning: &'static str,
    pub category: Option<Category>,
    pub layer: Option<Layer>,
    pub cause: &'static str,
    pub steps: &'static [&'static str],
    pub source: &'static str,
    /// An "other or undefined" code or a catch-all servers reuse for anything (X.7.1): its
    /// category, if any, yields to words that name a cause (docs/diagnosis.md "Conflicts").
    pub generic: bool,
}

impl CodeRule {
    pub const fn new(
        subject: u16,
        detail: u16,
        meaning: &'static str,
        category: Option<Category>,
        cause: &'static str,
        source: &'static str,
    ) -> CodeRule {
        CodeRule {
            classes: Classes::Any,
            subject,
            detail_lo: detail,
            detail_hi: detail,
            text: &[],
            stages: Stages::ANY,
            meaning,
            category,
            layer: None,
            cause,
            steps: &[],
            source,
            generic: false,
        }
    }
    pub const fn generic(self) -> CodeRule {
        CodeRule {
            generic: true,
            ..self
        }
    }
    pub const fn to(self, detail_hi: u16) -> CodeRule {
        CodeRule { detail_hi, ..self }
    }
    pub const fn text(self, text: &'static [&'static str]) -> CodeRule {
        CodeRule { text, ..self }
    }
    pub const fn at(self, stages: Stages) -> CodeRule {
        CodeRule { stages, ..self }
    }
    pub const fn only(self, classes: Classes) -> CodeRule {
        CodeRule { classes, ..self }
    }
    pub const fn layer(self, layer: Layer) -> CodeRule {
        CodeRule {
            layer: Some(layer),
            ..self
        }
    }
    pub const fn steps(self, steps: &'static [&'static str]) -> CodeRule {
        CodeRule { steps, ..self }
    }

    pub fn matches(
        &self,
        class: u8,
        subject: u16,
        detail: u16,
        text: &str,
        stage: Option<Stage>,
    ) -> bool {
        self.classes.contains(u16::from(class))
            && self.subject == subject
            && (self.detail_lo..=self.detail_hi).contains(&detail)
            && self.stages.contains(stage)
            && (self.text.is_empty() || self.text.iter().any(|n| has(text, n)))
    }
}

/// A row keyed on the basic reply code (RFC 5321) and the stage: the last resort before
/// `other`, and the code's documented meaning for every cause that quotes it.
#[derive(Debug, Clone, Copy)]
pub struct BasicRule {
    pub code_lo: u16,
    pub code_hi: u16,
    pub stages: Stages,
    pub meaning: &'static str,
    pub category: Option<Category>,
    pub layer: Option<Layer>,
    pub cause: &'static str,
    pub steps: &'static [&'static str],
    pub source: &'static str,
    /// The code means this at this stage by definition (RFC 4954's AUTH replies, RFC 3207's
    /// STARTTLS replies): decides with high confidence, not "probably".
    pub sure: bool,
}

impl BasicRule {
    pub const fn new(
        code: u16,
        meaning: &'static str,
        category: Option<Category>,
        cause: &'static str,
        source: &'static str,
    ) -> BasicRule {
        BasicRule {
            code_lo: code,
            code_hi: code,
            stages: Stages::ANY,
            meaning,
            category,
            layer: None,
            cause,
            steps: &[],
            source,
            sure: false,
        }
    }
    pub const fn sure(self) -> BasicRule {
        BasicRule { sure: true, ..self }
    }
    pub const fn steps(self, steps: &'static [&'static str]) -> BasicRule {
        BasicRule { steps, ..self }
    }
    pub const fn to(self, code_hi: u16) -> BasicRule {
        BasicRule { code_hi, ..self }
    }
    pub const fn at(self, stages: Stages) -> BasicRule {
        BasicRule { stages, ..self }
    }
    pub const fn layer(self, layer: Layer) -> BasicRule {
        BasicRule {
            layer: Some(layer),
            ..self
        }
    }
}

impl BasicRule {
    pub fn matches(&self, code: u16, stage: Option<Stage>) -> bool {
        (self.code_lo..=self.code_hi).contains(&code) && self.stages.contains(stage)
    }

    /// True for a row that covers a whole class of codes (x00-x99): its meaning is the first
    /// digit's (RFC 5321 4.2.1), not a code's own.
    pub fn is_class_only(&self) -> bool {
        self.code_lo.is_multiple_of(100) && self.code_hi == self.code_lo + 99
    }
}

/// True when `needle` occurs in `hay` (both lower-case); a leading `#` asks for a whole word,
/// i.e. no ASCII letter or digit on either side.
pub fn has(hay: &str, needle: &str) -> bool {
    match needle.strip_prefix('#') {
        Some(word) => has_word(hay, word),
        None => hay.contains(needle),
    }
}

fn has_word(hay: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let bytes = hay.as_bytes();
    let mut from = 0;
    while let Some(pos) = hay.get(from..).and_then(|h| h.find(word)) {
        let start = from + pos;
        let end = start + word.len();
        let before = start
            .checked_sub(1)
            .and_then(|i| bytes.get(i))
            .is_some_and(u8::is_ascii_alphanumeric);
        let after = bytes.get(end).is_some_and(u8::is_ascii_alphanumeric);
        if !before && !after {
            return true;
        }
        from = start + 1;
        while !hay.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_matching() {
        assert!(has("blocked by rbl x", "#rbl"));
        assert!(has("rbl", "#rbl"));
        assert!(has("(rbl)", "#rbl"));
        assert!(!has("herbl", "#rbl"));
        assert!(!has("rbls", "#rbl"));
        assert!(has("xrbl rbl", "#rbl"));
        assert!(has("é rbl é", "#rbl"));
        assert!(has("abc", "b"));
        assert!(!has("abc", "#"));
    }

    #[test]
    fn stage_sets() {
        assert!(RCPT.contains(Some(Stage::RcptTo)));
        assert!(!RCPT.contains(Some(Stage::MailFrom)));
        assert!(!RCPT.contains(None));
        assert!(RCPT.or_unknown().contains(None));
        assert!(Stages::ANY.contains(None));
        assert!(Stages::ANY.contains(Some(Stage::Quit)));
    }
}
