//! The page around a report: doctype, a Content-Security-Policy that forbids every fetch and
//! every script (the report needs neither), and the inline style sheet.

use super::Esc;
use std::fmt::Write;

/// `default-src 'none'`: no script, font, image or frame from anywhere; only the inline style
/// and `data:` images (W3C Content Security Policy Level 3).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// Colours as custom properties so dark mode (`prefers-color-scheme`, Media Queries Level 5)
/// and print only swap the palette. Outcome colours are always paired with a word.
const CSS: &str = r#"
:root{--bg:#fff;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--card:#f6f8fa;
--ok:#1a7f37;--okbg:#dafbe1;--warn:#9a6700;--warnbg:#fff8c5;--fail:#cf222e;--failbg:#ffebe9;
--bar:#0969da;--slow:#bc4c00;--skip:#8c959f}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;
--line:#30363d;--card:#161b22;--ok:#3fb950;--okbg:#12261e;--warn:#d29922;--warnbg:#272115;
--fail:#f85149;--failbg:#2d1214;--bar:#4493f8;--slow:#f0883e;--skip:#6e7681}}
body{background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 1.5rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .4rem;
border-bottom:1px solid var(--line)}h3{font-size:1rem;margin:1rem 0 .3rem}
.meta{color:var(--muted);margin:.2rem 0}code,pre,.mono{font-family:ui-monospace,
"SFMono-Regular",Consolas,monospace;font-size:.85rem}
pre{background:var(--card);border:1px solid var(--line);padding:.6rem;overflow-x:auto;
white-space:pre-wrap;word-break:break-all}
.verdict{padding:.5rem .8rem;border-radius:6px;border-left:6px solid}
.ok{color:var(--ok)}.warn{color:var(--warn)}.fail{color:var(--fail)}.skip{color:var(--skip)}
.verdict.ok{background:var(--okbg)}.verdict.warn{background:var(--warnbg)}
.verdict.fail{background:var(--failbg)}
.box{border:2px solid var(--line);border-radius:6px;padding:.3rem .5rem;background:var(--card);
min-width:9rem}.box.ok{border-color:var(--ok)}.box.warn{border-color:var(--warn)}
.box.fail{border-color:var(--fail);border-width:3px}.box.skip{border-style:dashed}
.box small{display:block;color:var(--muted)}
.hop{display:flex;align-items:center;gap:.5rem;margin:.6rem 0;overflow-x:auto}
td.mono{overflow-wrap:anywhere}tr.ok,tr.fail{color:inherit}
.col{display:flex;flex-direction:column;gap:.4rem}.row{display:flex;align-items:center;gap:.5rem}
.arrow{color:var(--muted);font-weight:bold}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:.7rem}
.card{border:1px solid var(--line);border-top:5px solid var(--fail);border-radius:6px;
padding:.5rem .8rem;background:var(--card)}.card.note{border-top-color:var(--warn)}
.card h3{margin:.1rem 0}.card dl{display:grid;grid-template-columns:auto 1fr;gap:.1rem .6rem;
margin:.3rem 0}.card dt{color:var(--muted)}.card dd{margin:0}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border:1px solid var(--line);padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:var(--card)}tr.fail td:first-child,tr.regression td:first-child{
border-left:5px solid var(--fail)}tr.ok td:first-child,tr.improvement td:first-child{
border-left:5px solid var(--ok)}tr.change td:first-child{border-left:5px solid var(--warn)}
.side{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
svg{max-width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:var(--fg)}
svg .bar{fill:var(--bar)}svg .bar.slow{fill:var(--slow)}svg .bar.fail{fill:var(--fail)}
svg .bar.warn{fill:var(--warn)}svg .outage{fill:var(--failbg)}svg .grid{stroke:var(--line)}svg .dim{fill:var(--muted)}
summary{cursor:pointer;font-weight:600}
@media print{:root{--bg:#fff;--fg:#000;--card:#fff;--line:#999}body{max-width:none}
details>summary{list-style:none}a{color:inherit;text-decoration:none}
h2{break-after:avoid}.hop{flex-wrap:wrap}.card,.box,tr{break-inside:avoid}}
"#;

/// The whole document around `body`. `started_at` is the result's own time (none for `demo` and
/// `diff`), never the time of rendering, so one result always renders to the same bytes.
pub fn wrap(title: &str, started_at: Option<&str>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + CSS.len() + 512);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n\
         <p class=\"meta\">{}mxtrace {}</p>\n</header>\n<main>\n{body}</main>\n\
         </body>\n</html>\n",
        Esc(title),
        Esc(title),
        started_at
            .map(|t| format!("started {} &middot; ", Esc(t)))
            .unwrap_or_default(),
        env!("CARGO_PKG_VERSION"),
    );
    out
}
