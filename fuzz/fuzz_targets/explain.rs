//! `mxtrace explain` on arbitrary pasted text: parse, then classify at every stage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxtrace_knowledge as diagnose;
use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::reply::Reply;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reply) = Reply::parse_text(text) {
        let _ = diagnose::explain_reply(None, &reply);
        for stage in Stage::ALL {
            let _ = diagnose::explain_reply(Some(stage), &reply);
        }
    }
});
