//! `mxtrace headers` on arbitrary bytes: parse (mail-parser), read the Received chain,
//! authentication, stamps and NDR, classify, and render both outputs. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxtrace_core::headers::analyze;
use mxtrace_render::headers::render_human;
use mxtrace_render::style::Style;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = analyze("fuzz", data) {
        let _ = render_human(&report, Style::new(false));
        let _ = mxtrace_render::json::render("headers", &report);
    }
});
