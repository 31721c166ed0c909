//! `mxtrace explain`: placeholder until the classifier branch lands (same API).

use crate::diagnose::{self, Explanation};
use crate::model::Stage;
use crate::smtp::reply::Reply;

#[derive(Debug)]
pub struct ExplainInputError(pub String);

pub fn explain_text(
    reply: &str,
    stage: Option<&str>,
) -> Result<(Reply, Option<Stage>, Explanation), ExplainInputError> {
    let stage = match stage {
        Some(s) => Some(
            Stage::from_user(s).ok_or_else(|| ExplainInputError(format!("unknown stage {s:?}")))?,
        ),
        None => None,
    };
    let reply = Reply::parse_text(reply).map_err(|e| ExplainInputError(e.to_string()))?;
    let e = diagnose::explain_reply(stage, &reply);
    Ok((reply, stage, e))
}

pub fn render_human(
    _reply: &Reply,
    _stage: Option<Stage>,
    e: &Explanation,
    _color: bool,
) -> String {
    format!("{e:?}\n")
}

pub fn render_json(e: &Explanation) -> serde_json::Value {
    serde_json::to_value(e).unwrap_or_default()
}

impl std::fmt::Display for ExplainInputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
