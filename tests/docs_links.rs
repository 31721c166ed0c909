//! The documentation's links: every relative Markdown link or image in README.md,
//! ARCHITECTURE.md and docs/*.md names a file that exists (relative to the linking file), and
//! every `#anchor` (in the page, or `file.md#anchor`) names a heading of its target, by GitHub's
//! anchor rules. README.md stays a front door: at most 300 lines.
//!
//! Plain std, no Markdown crate: links inside fenced code blocks and inline code spans are not
//! links; http(s) and mailto links are not checked (no network in tests). Headings are ATX
//! headings (`## Title`), the only kind these files use.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Component, Path, PathBuf};

const README_MAX_LINES: usize = 300;

#[test]
fn documentation_links_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    files.extend(markdown_under(&root.join("docs")));
    let problems = check(root, &files);
    assert!(
        problems.is_empty(),
        "{} broken link(s) in the documentation:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn readme_is_a_front_door() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(root.join("README.md")).expect("README.md");
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, over {README_MAX_LINES}: it is the front door (what \
         mxtrace is, install, one example per command); move reference material to docs/"
    );
}

/// Every `.md` file under `dir`, sorted (none if `dir` does not exist).
fn markdown_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("reading a docs/ entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Checks the links of `files`; one message per problem, naming the file and line.
fn check(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut anchors_of: HashMap<PathBuf, BTreeSet<String>> = HashMap::new();
    let mut problems = Vec::new();
    for file in files {
        let shown = display(root, file);
        let text = match fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{shown}: cannot read: {e}"));
                continue;
            }
        };
        for link in links(&text) {
            let at = format!("{shown}:{}: ({})", link.line, link.target);
            if is_external(&link.target) {
                continue;
            }
            let (path, fragment) = match link.target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (link.target.as_str(), None),
            };
            let path = percent_decode(path);
            let target = if path.is_empty() {
                file.clone()
            } else if let Some(from_root) = path.strip_prefix('/') {
                root.join(from_root)
            } else {
                file.parent().expect("a file has a directory").join(&path)
            };
            let target = normalize(&target);
            if !target.exists() {
                problems.push(format!(
                    "{at}: {} does not exist (the path is relative to {shown})",
                    display(root, &target)
                ));
                continue;
            }
            let Some(fragment) = fragment else { continue };
            let is_markdown = target.is_file() && target.extension().is_some_and(|e| e == "md");
            if !is_markdown {
                continue; // `#L10` in a source file, a directory: GitHub's own anchors
            }
            let anchors = anchors_of.entry(target.clone()).or_insert_with(|| {
                fs::read_to_string(&target)
                    .map(|t| anchors(&t))
                    .unwrap_or_default()
            });
            let fragment = percent_decode(fragment);
            if !anchors.contains(&fragment) {
                // The anchors that look like the one asked for, else all of them.
                let near: Vec<&str> = anchors
                    .iter()
                    .map(String::as_str)
                    .filter(|a| a.contains(fragment.as_str()) || fragment.contains(a))
                    .collect();
                let (what, list) = if near.is_empty() {
                    ("its anchors", anchors.iter().map(String::as_str).collect())
                } else {
                    ("did you mean", near)
                };
                problems.push(format!(
                    "{at}: no heading of {} has the anchor `#{fragment}`; {what}: {}",
                    display(root, &target),
                    list.join(", ")
                ));
            }
        }
    }
    problems
}

fn display(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `a/b/../c` -> `a/c` without touching the file system (so a missing `b` is still reported
/// as the target that is missing).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn is_external(target: &str) -> bool {
    let t = target.to_ascii_lowercase();
    t.starts_with("http://") || t.starts_with("https://") || t.starts_with("mailto:")
}

/// `%20` and the like, as a browser decodes them before it looks for the file or the anchor.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(high), Some(low)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug)]
struct Link {
    line: usize,
    target: String,
}

/// The text with fenced code blocks blanked out (their lines kept empty, so line numbers hold).
fn without_fences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut open: Option<(u8, usize)> = None; // fence character and length
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        let fence = [b'`', b'~'].into_iter().find_map(|c| {
            let n = rest.bytes().take_while(|&b| b == c).count();
            (indent <= 3 && n >= 3).then_some((c, n))
        });
        match (open, fence) {
            (None, Some(f)) => {
                open = Some(f);
                out.push("");
            }
            (Some((c, n)), Some((c2, n2)))
                if c == c2 && n2 >= n && rest[n2..].trim().is_empty() =>
            {
                open = None;
                out.push("");
            }
            (Some(_), _) => out.push(""),
            (None, None) => out.push(line),
        }
    }
    out
}

/// Inline code spans replaced by spaces (within one paragraph, as CommonMark allows), so that
/// `[x](y)` written as code is not a link. Newlines are kept.
fn mask_code_spans(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'`' {
            i += 1;
            continue;
        }
        let run = b[i..].iter().take_while(|&&c| c == b'`').count();
        let paragraph_end = text[i..].find("\n\n").map_or(b.len(), |p| i + p);
        let mut j = i + run;
        let mut close = None;
        while j < paragraph_end {
            if b[j] == b'`' {
                let r = b[j..].iter().take_while(|&&c| c == b'`').count();
                if r == run {
                    close = Some(j);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in &mut out[i..j + run] {
                    if *c != b'\n' {
                        *c = b' ';
                    }
                }
                i = j + run;
            }
            None => i += run, // no closing run: the backticks are literal
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were replaced")
}

/// Every `[text](target)` and `![alt](target)` outside code, and every reference definition
/// `[label]: target`, with the line its `[` is on.
fn links(text: &str) -> Vec<Link> {
    let prose = mask_code_spans(&without_fences(text).join("\n"));
    let b = prose.as_bytes();
    let line_of = |pos: usize| prose[..pos].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (n, line) in prose.lines().enumerate() {
        let t = line.trim_start();
        if line.len() - t.len() <= 3 && t.starts_with('[') {
            if let Some(end) = t.find("]:") {
                if !t[1..end].contains('[') {
                    if let Some(target) = t[end + 2..].split_whitespace().next() {
                        let target = target.trim_start_matches('<').trim_end_matches('>');
                        found.push(Link {
                            line: n + 1,
                            target: target.to_string(),
                        });
                    }
                }
            }
        }
    }
    let mut opens: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1, // an escaped character is not markup
            b'\n' if b.get(i + 1) == Some(&b'\n') => opens.clear(), // a paragraph ends
            b'[' => opens.push(i),
            b']' => {
                if let Some(open) = opens.pop() {
                    if b.get(i + 1) == Some(&b'(') {
                        if let Some((target, end)) = destination(&prose, i + 2) {
                            found.push(Link {
                                line: line_of(open),
                                target,
                            });
                            opens.clear();
                            i = end;
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    found.sort_by_key(|l| l.line);
    found
}

/// The destination of an inline link whose `(` is just before `start`, and the position of
/// its closing `)`: `<with spaces>`, or up to whitespace or the `)` that balances, then an
/// optional title.
fn destination(text: &str, start: usize) -> Option<(String, usize)> {
    let b = text.as_bytes();
    let mut i = start;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\n') {
        i += 1;
    }
    let (target, after) = if b.get(i) == Some(&b'<') {
        let end = i + text[i..].find('>')?;
        (&text[i + 1..end], end + 1)
    } else {
        let begin = i;
        let mut depth = 0;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            match b[i] {
                b'(' => depth += 1,
                b')' if depth == 0 => break,
                b')' => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        (&text[begin..i], i)
    };
    // An optional title ("...", '...' or (...)), then the closing parenthesis.
    let close = after + text[after..].find(')')?;
    Some((target.to_string(), close))
}

/// The anchors GitHub gives the ATX headings of a Markdown file: the heading's text, lower
/// case, punctuation other than `-` and `_` removed, each space a `-`; a repeated anchor gets
/// `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for line in without_fences(text) {
        let Some(heading) = heading_text(line) else {
            continue;
        };
        let base = slug(&heading);
        let mut anchor = base.clone();
        let count = seen.entry(base.clone()).or_insert(0);
        while out.contains(&anchor) {
            *count += 1;
            anchor = format!("{base}-{count}");
        }
        out.insert(anchor);
    }
    out
}

/// The text of an ATX heading (`# Title`, `### Title ###`), without its markers.
fn heading_text(line: &str) -> Option<String> {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return None;
    }
    let level = t.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let mut rest = rest.trim();
    // An optional closing sequence of #s, after a space.
    let stripped = rest.trim_end_matches('#');
    if stripped.is_empty() || stripped.ends_with(' ') {
        rest = stripped.trim_end();
    }
    Some(rest.to_string())
}

/// GitHub's anchor for a heading's text: links and images count by their text, then lower
/// case, every character that is not a letter, digit, space, `-` or `_` removed, and each
/// space turned into `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // [text](target) -> text
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|c| open + c) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|e| close + e) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn slug_follows_github() {
    assert_eq!(
        slug("`mxtrace probe HOST[:PORT]`: one endpoint, stage by stage"),
        "mxtrace-probe-hostport-one-endpoint-stage-by-stage"
    );
    assert_eq!(
        slug("Nagios and Icinga (`--format nagios`)"),
        "nagios-and-icinga---format-nagios"
    );
    assert_eq!(slug("JSON (`probe`)"), "json-probe");
    assert_eq!(slug("Per family (IPv6 / IPv4)"), "per-family-ipv6--ipv4");
    assert_eq!(slug("snake_case and C++"), "snake_case-and-c");
    assert_eq!(slug("See [the lab](lab.md) now"), "see-the-lab-now");
    assert_eq!(slug("Übersicht 2"), "übersicht-2");
}

#[test]
fn anchors_of_headings() {
    let text = "# Title\n\n## Exit codes ##\n\n```sh\n# not a heading\n```\n\n## Exit codes\n\
                #hashtag\n    # indented code\n## Exit codes\n";
    let got: Vec<String> = anchors(text).into_iter().collect();
    assert_eq!(got, ["exit-codes", "exit-codes-1", "exit-codes-2", "title"]);
}

#[test]
fn links_outside_code() {
    let text = "See [probe](probe.md#stages) and ![a diagram](img/path.svg \"title\").\n\
                `[not](a-link.md)` and\n\n```\n[not](fenced.md)\n```\n\n~~~~\n```\n[not](tilde.md)\n~~~~\n\
                A [link over\ntwo lines](two.md) and [web](https://example.com), <x>\n\
                [spaces](<a file.md>) \\[escaped](no.md) [paren](a_(b).md)\n\
                [ref]: ../ARCHITECTURE.md#sources\n";
    let got: Vec<(usize, String)> = links(text)
        .into_iter()
        .map(|l| (l.line, l.target))
        .collect();
    let want: Vec<(usize, String)> = [
        (1, "probe.md#stages"),
        (1, "img/path.svg"),
        (12, "two.md"),
        (13, "https://example.com"),
        (14, "a file.md"),
        (14, "a_(b).md"),
        (15, "../ARCHITECTURE.md#sources"),
    ]
    .into_iter()
    .map(|(n, t)| (n, t.to_string()))
    .collect();
    assert_eq!(got, want);
}

/// The checker fails on a missing file and a missing anchor, in the page and in another file,
/// and passes good ones.
#[test]
fn check_reports_what_is_broken() {
    let dir = std::env::temp_dir().join(format!("mxtrace-docs-links-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("docs")).expect("temp dir");
    fs::write(
        dir.join("README.md"),
        "# Top\n\n## Exit codes\n\n[ok](docs/a.md#usage) [ok](#exit-codes) [web](https://x.invalid)\n\
         [missing](docs/nope.md) [bad anchor](docs/a.md#nope) [bad here](#exit-code)\n",
    )
    .expect("write");
    fs::write(
        dir.join("docs/a.md"),
        "# A\n\n## Usage\n\n[back](../README.md#top)\n",
    )
    .expect("write");
    let problems = check(&dir, &[dir.join("README.md"), dir.join("docs/a.md")]);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("README.md:6: (docs/nope.md): docs/nope.md does not exist"));
    assert!(problems[1].starts_with("README.md:6: (docs/a.md#nope): no heading of docs/a.md"));
    assert!(problems[2].starts_with("README.md:6: (#exit-code): no heading of README.md"));
    assert!(
        problems[2].ends_with("did you mean: exit-codes"),
        "{}",
        problems[2]
    );
}
