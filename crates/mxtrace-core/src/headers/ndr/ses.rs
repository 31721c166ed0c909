//! Amazon SES bounce notifications delivered by email (an SNS topic's email subscription, or
//! SES feedback forwarding): the prose is JSON, and the failed recipients are the
//! `bounce.bouncedRecipients` array, each with the RFC 3464 fields of the DSN SES received
//! (`emailAddress`, `action`, `status`, `diagnosticCode`). Format: AWS "Amazon SES
//! notification contents" (docs.aws.amazon.com/ses/latest/dg/notification-contents.html).
//!
//! Only that array is parsed: SNS's email delivery wraps long lines, which can break a string
//! elsewhere in the document (the copied `mail.headers`), so the whole message may not be
//! valid JSON while the array, written first, is.

use serde::Deserialize;

/// Where the array starts (`"bouncedRecipients":[`).
const KEY: &str = "\"bouncedRecipients\"";

/// One bounced recipient as SES reports it.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Bounced {
    pub email_address: String,
    pub action: Option<String>,
    pub status: Option<String>,
    pub diagnostic_code: Option<String>,
}

/// The bounced recipients of the first SES notification in `text`, or nothing when there is
/// none (or it does not parse).
pub fn bounced_recipients(text: &str) -> Vec<Bounced> {
    let Some(at) = text.find(KEY) else {
        return Vec::new();
    };
    let Some(rest) = text.get(at + KEY.len()..) else {
        return Vec::new();
    };
    let Some(array) = rest.trim_start().strip_prefix(':') else {
        return Vec::new();
    };
    // The first JSON value after the key; whatever follows it is not read.
    serde_json::Deserializer::from_str(array)
        .into_iter::<Vec<Bounced>>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_array_is_read_even_when_the_rest_is_broken() {
        let text = "{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\",\
            \"bouncedRecipients\":[{\"emailAddress\":\"a@example.com\",\"action\":\"failed\",\
            \"status\":\"5.1.1\",\"diagnosticCode\":\"smtp; 550 5.1.1 user unknown\"},\
            {\"emailAddress\":\"b@example.com\"}]},\"mail\":{\"headers\":[{\"name\":\"!\n X\"}]}}";
        let got = bounced_recipients(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].email_address, "a@example.com");
        assert_eq!(got[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(got[1].diagnostic_code, None);
    }

    #[test]
    fn no_notification_or_no_json() {
        assert!(bounced_recipients("The following address(es) failed:").is_empty());
        assert!(bounced_recipients("\"bouncedRecipients\": not json").is_empty());
        assert!(bounced_recipients("\"bouncedRecipients\"").is_empty());
    }
}
