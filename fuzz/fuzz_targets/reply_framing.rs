//! Reply framing on arbitrary bytes, split into lines as the connection splits them: it must
//! never panic, and every reply it returns respects the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxtrace_proto::smtp::reply::{ReplyAccumulator, MAX_LINE, MAX_REPLY_LINES};

fuzz_target!(|data: &[u8]| {
    let mut acc = ReplyAccumulator::new();
    for raw in data.split(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        match acc.push_line(line) {
            Ok(Some(reply)) => {
                assert!((200..=599).contains(&reply.code));
                assert!(!reply.lines.is_empty() && reply.lines.len() <= MAX_REPLY_LINES);
                assert!(reply.lines.iter().all(|l| l.len() <= MAX_LINE * 3));
                if let Some(e) = reply.enhanced {
                    assert_eq!(u16::from(e.class), reply.code / 100);
                }
                let _ = reply.text();
            }
            Ok(None) => {}
            Err(_) => acc = ReplyAccumulator::new(),
        }
    }
});
