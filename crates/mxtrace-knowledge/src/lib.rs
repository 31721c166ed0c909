//! Explaining replies and errors: a reply's class (RFC 5321/3463), its category from the fixed
//! vocabulary (README "Reply categories") with how sure the classifier is (confidence and the
//! runner-up), the failure layer, the likely cause and next steps, tagged with the delivery
//! scenario and hop. How a reply is weighed: classify.rs (precedence and the conflict rule),
//! tables.rs, registry.rs and families.rs (the data), docs/diagnosis.md.

// Input from the network, files and the command line is hostile: outside tests, nothing may
// panic on it. Enforced here rather than by grep.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::panic
    )
)]

mod advice;
mod classify;
mod errors;
mod families;
mod oauth;
mod peer;
mod registry;
mod rules;
mod scenario;
mod tables;

pub use classify::{classify_in, classify_reply, classify_status, Finding, SessionFacts, Tier};
pub use errors::{
    explain_observation, explain_tls_verification, observe_banner, observe_ehlo, Observation,
};
pub use oauth::{
    aadsts, explain_challenge, explain_challenge_for, explain_imap_token_refusal,
    explain_mailbox_token_error, is_exchange_online_submission, AadRow, TokenUse, AADSTS,
    BASIC_AUTH_RETIRING,
};
pub use peer::{drop_cipher_advice, fit_next_steps, fit_steps, identify as identify_peer, Peer};
pub use scenario::{
    diagnose, diagnose_in, hints_from_spf, is_eop_host, scenario_for_host, scenario_for_mx,
    tenant_routing_domain, MxSetWarning, Observed, ScenarioDetection,
};

pub use mxtrace_proto::model::{
    Category, Class, Confidence, Diagnosis, Explanation, Layer, PathContext, Scenario, SpfHints,
};
use mxtrace_proto::model::{ErrorKind, Stage};
use mxtrace_proto::smtp::reply::Reply;

/// Class from the basic code (RFC 5321 4.2.1): 2xx and 3xx are positive, 4xx transient,
/// 5xx permanent.
pub fn class_of(reply: &Reply) -> Class {
    match reply.first_digit() {
        2 | 3 => Class::Success,
        4 => Class::Transient,
        _ => Class::Permanent,
    }
}

/// Explains one reply received at `stage` (None when the stage is unknown, as with a pasted
/// reply without `--stage`).
pub fn explain_reply(stage: Option<Stage>, reply: &Reply) -> Explanation {
    explain_reply_in(stage, reply, SessionFacts::default())
}

/// Explains one reply with what the session knows about the server (see `SessionFacts`).
pub fn explain_reply_in(stage: Option<Stage>, reply: &Reply, facts: SessionFacts) -> Explanation {
    explanation(classify_in(stage, reply, facts))
}

fn explanation(f: Finding) -> Explanation {
    Explanation {
        class: f.class,
        category: f.category,
        confidence: f.confidence,
        runner_up: f.runner_up,
        layer: f.layer,
        cause: f.cause,
        next_steps: f.next_steps,
    }
}

/// Explains what a bounce says when it gives no SMTP reply: its status code and its prose.
pub fn explain_status(
    stage: Option<Stage>,
    status: Option<mxtrace_proto::smtp::reply::EnhancedCode>,
    text: &str,
) -> Explanation {
    explanation(classify_status(stage, status, text))
}

/// Explains a stage that ended without a usable reply (see errors.rs for the category rule).
pub fn explain_error(stage: Stage, kind: ErrorKind, detail: &str) -> Explanation {
    errors::explain_error(stage, kind, detail)
}

#[cfg(test)]
mod tests;

/// The settings a diagnosis names (`{setting:...}` in the tables), worded for the front end
/// that shows it: flags for the command line, keys for a scenario file or an exporter module.
pub fn word_settings(d: &mut Diagnosis, naming: mxtrace_proto::spec::Naming) {
    d.cause = mxtrace_proto::spec::reword(&d.cause, naming);
    for s in &mut d.next_steps {
        *s = mxtrace_proto::spec::reword(s, naming);
    }
}

/// As `word_settings`, for an explanation not yet placed in a path.
pub fn word_explanation(e: &mut Explanation, naming: mxtrace_proto::spec::Naming) {
    e.cause = mxtrace_proto::spec::reword(&e.cause, naming);
    for s in &mut e.next_steps {
        *s = mxtrace_proto::spec::reword(s, naming);
    }
}
