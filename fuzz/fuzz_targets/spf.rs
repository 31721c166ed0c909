//! SPF scenario hints on arbitrary TXT record text (DNS data is outside text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxtrace_knowledge as diagnose;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let h = diagnose::hints_from_spf(&text);
    assert!(h.other_includes.len() <= 32);
    assert!(h.candidates.len() <= 2);
    let _ = diagnose::scenario_for_mx(&[text.to_string()], Some(&text));
    let _ = diagnose::tenant_routing_domain(&text);
});
