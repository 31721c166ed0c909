//! The generalisation test (issue 29): the labelled corpus in corpus/, split before any rule was
//! written. The dev part may be read by people and rules; the held-out part is read only here,
//! and only aggregate figures are printed for it (never a row's text), so nobody fits to it.

use super::super::*;
use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::reply::Reply;
use std::collections::BTreeMap;

const DEV: &str = include_str!("../../corpus/replies-dev.tsv");
const HELDOUT: &str = include_str!("../../corpus/replies-heldout.tsv");

struct Row {
    line: usize,
    stage: Option<Stage>,
    want: String,
    reply: String,
}

fn rows(text: &str) -> Vec<Row> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 5, "line {}: 5 columns", i + 1);
            let stage = match cols[0] {
                "-" => None,
                s => Some(Stage::from_user(s).unwrap_or_else(|| panic!("line {}: stage", i + 1))),
            };
            Row {
                line: i + 1,
                stage,
                want: cols[1].to_string(),
                reply: cols[3].replace("\\n", "\n"),
            }
        })
        .collect()
}

/// What one run over a part found.
#[derive(Default)]
struct Score {
    total: usize,
    right: usize,
    confident_wrong: usize,
    per_category: BTreeMap<String, (usize, usize)>,
    misses: Vec<String>,
}

fn score(rows: &[Row]) -> Score {
    let mut s = Score::default();
    for r in rows {
        let reply = Reply::parse_text(&r.reply).unwrap_or_else(|e| panic!("line {}: {e}", r.line));
        let f = classify_reply(r.stage, &reply);
        let got = f.category.as_str();
        let entry = s.per_category.entry(r.want.clone()).or_default();
        entry.1 += 1;
        s.total += 1;
        if got == r.want {
            s.right += 1;
            entry.0 += 1;
            continue;
        }
        let confident = f.confidence == Confidence::High;
        if confident {
            s.confident_wrong += 1;
        }
        s.misses.push(format!(
            "line {} [{:?}] {:?}: want {} got {got}{} ({:?}, {})",
            r.line,
            r.stage,
            r.reply,
            r.want,
            if confident { " CONFIDENT" } else { "" },
            f.tier,
            f.source
        ));
    }
    s
}

fn pct(right: usize, total: usize) -> f64 {
    if total == 0 {
        return 100.0;
    }
    right as f64 * 100.0 / total as f64
}

fn print_aggregate(label: &str, s: &Score) {
    println!(
        "{label}: {}/{} right ({:.1}%), confident-wrong {}",
        s.right,
        s.total,
        pct(s.right, s.total),
        s.confident_wrong
    );
    for (cat, (right, total)) in &s.per_category {
        println!("  {label} {cat}: {right}/{total}");
    }
}

#[test]
fn dev_replies() {
    let s = score(&rows(DEV));
    print_aggregate("replies dev", &s);
    for m in &s.misses {
        println!("  {m}");
    }
}

/// Aggregate figures only: the held-out rows are never printed.
#[test]
fn heldout_replies() {
    let s = score(&rows(HELDOUT));
    print_aggregate("replies held-out", &s);
}
