//! Bounces (issue 29): every failed recipient of the labelled bounce messages in
//! tests/data/bounces gets the category and status the manifest expects. The dev part is
//! checked row by row; the held-out part is read only here and reported as aggregate figures
//! (never a file name, recipient or text), so nobody fits to it.

use mxtrace_core::headers::analyze;
use mxtrace_proto::model::headers::NdrRecipient;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/bounces")
}

struct Row {
    file: String,
    recipient: String,
    category: String,
    status: String,
}

fn manifest(name: &str) -> Vec<Row> {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 5, "{name}: 5 columns");
            Row {
                file: c[0].to_string(),
                recipient: c[1].to_string(),
                category: c[2].to_string(),
                status: c[3].to_string(),
            }
        })
        .collect()
}

/// What the tool said for one row.
struct Got {
    category: String,
    status: String,
    confident: bool,
}

fn read_row(row: &Row) -> Got {
    let raw = std::fs::read(dir().join(&row.file)).unwrap();
    let report = analyze(&row.file, &raw).unwrap();
    let ndr = report.ndr.map(|n| n.ndr.recipients).unwrap_or_default();
    let want = row.recipient.to_ascii_lowercase();
    let names = |r: &NdrRecipient| {
        let mut v = vec![r.recipient.to_ascii_lowercase()];
        v.extend(r.original_recipient.iter().map(|o| o.to_ascii_lowercase()));
        v
    };
    let found: Option<&NdrRecipient> =
        ndr.iter().find(|r| names(r).contains(&want)).or_else(|| {
            ndr.iter()
                .find(|r| r.recipient.to_ascii_lowercase().contains(&want))
        });
    let Some(r) = found else {
        return Got {
            category: "(recipient not found)".into(),
            status: "-".into(),
            confident: false,
        };
    };
    let category = r
        .explanation
        .as_ref()
        .map_or("(none)".to_string(), |e| e.category.as_str().to_string());
    let high = r
        .explanation
        .as_ref()
        .is_some_and(|e| e.confidence == mxtrace_proto::model::Confidence::High);
    Got {
        confident: high,
        category,
        status: r.status.clone().unwrap_or_else(|| "-".into()),
    }
}

#[derive(Default)]
struct Score {
    total: usize,
    right: usize,
    status_right: usize,
    confident_wrong: usize,
    per_category: BTreeMap<String, (usize, usize)>,
    misses: Vec<String>,
}

fn score(rows: &[Row]) -> Score {
    let mut s = Score::default();
    for row in rows {
        let got = read_row(row);
        let e = s.per_category.entry(row.category.clone()).or_default();
        e.1 += 1;
        s.total += 1;
        if got.status == row.status {
            s.status_right += 1;
        }
        if got.category == row.category {
            s.right += 1;
            e.0 += 1;
        } else {
            s.confident_wrong += usize::from(got.confident);
            s.misses.push(format!(
                "{} {}: want {} got {}{}",
                row.file,
                row.recipient,
                row.category,
                got.category,
                if got.confident { " CONFIDENT" } else { "" }
            ));
        }
        if got.status != row.status {
            s.misses.push(format!(
                "{} {}: status want {} got {}",
                row.file, row.recipient, row.status, got.status
            ));
        }
    }
    s
}

fn print_aggregate(label: &str, s: &Score) {
    println!(
        "{label}: {}/{} categories right ({:.1}%), {}/{} statuses right, confident-wrong {}",
        s.right,
        s.total,
        s.right as f64 * 100.0 / s.total.max(1) as f64,
        s.status_right,
        s.total,
        s.confident_wrong
    );
    for (cat, (right, total)) in &s.per_category {
        println!("  {label} {cat}: {right}/{total}");
    }
}

#[test]
fn dev_bounces() {
    let s = score(&manifest("bounces-dev.tsv"));
    print_aggregate("bounces dev", &s);
    for m in &s.misses {
        println!("  {m}");
    }
}

/// "Near zero" confident wrong answers: at most one, or 1 % of the part.
fn near_zero(confident_wrong: usize, total: usize) -> bool {
    confident_wrong <= 1 || confident_wrong * 100 <= total
}

/// Aggregate figures only: the held-out files are never named or printed; confident wrong
/// answers must stay near zero.
#[test]
fn heldout_bounces() {
    let s = score(&manifest("bounces-heldout.tsv"));
    print_aggregate("bounces held-out", &s);
    // Every failed recipient should be found and get a category (`other` at worst): counted,
    // not named. One held-out recipient is not found yet (docs/diagnosis.md): the floor.
    let unexplained = s
        .misses
        .iter()
        .filter(|m| m.contains("got (recipient not found)") || m.contains("got (none)"))
        .count();
    println!("bounces held-out: {unexplained} failed recipient(s) not found (goal 0)");
    assert!(
        unexplained <= 1,
        "bounces held-out: {unexplained} recipient(s) without a category"
    );
    // The floor the method reached (33/47, measured once): a regression fails.
    assert!(
        s.right * 100 >= s.total * 70,
        "bounces held-out: {}/{} categories right, below the 70 % floor",
        s.right,
        s.total
    );
    assert!(
        near_zero(s.confident_wrong, s.total),
        "bounces held-out: {} confident wrong answers",
        s.confident_wrong
    );
}

/// The dev part, row by row: every failed recipient is found and explained (`other` at
/// worst), and at least 99 % get the category the manifest expects (190/191 measured after
/// bounce round 4, 163/164 after round 3, 135/136 before).
#[test]
fn dev_bounces_are_explained() {
    let rows = manifest("bounces-dev.tsv");
    let s = score(&rows);
    let unexplained: Vec<&String> = s
        .misses
        .iter()
        .filter(|m| m.contains("got (none)"))
        .collect();
    assert!(unexplained.is_empty(), "{unexplained:#?}");
    assert!(
        s.right * 100 >= s.total * 99,
        "{}/{}: {:#?}",
        s.right,
        s.total,
        s.misses
    );
    assert_eq!(s.confident_wrong, 0, "{:#?}", s.misses);
}
