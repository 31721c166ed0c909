//! EHLO capability parsing on any well-framed reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxtrace_proto::smtp::ehlo::Capabilities;
use mxtrace_proto::smtp::reply::ReplyAccumulator;

fuzz_target!(|data: &[u8]| {
    let mut acc = ReplyAccumulator::new();
    for raw in data.split(|&b| b == b'\n') {
        match acc.push_line(raw) {
            Ok(Some(reply)) => {
                let caps = Capabilities::parse(&reply);
                let _ = caps.masked_keywords();
                let _ = caps.has("STARTTLS");
                assert!(caps.keywords.len() < reply.lines.len().max(1));
                return;
            }
            Ok(None) => {}
            Err(_) => return,
        }
    }
});
