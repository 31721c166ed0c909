//! The floors inside each crate: no import cycle between the top-level modules of a crate
//! (ARCHITECTURE.md). A module is a file `src/X.rs` or a folder `src/X/` of a crate
//! (`crates/*/src`, and `src` of the binary's package); `lib.rs` and `main.rs` are the root,
//! not modules. Module X imports module Y when X's files name `crate::Y` (also inside
//! `use crate::{a, b::c}` groups), `super::Y` where `super` is the root, or a name the root
//! re-exports from Y (`pub use Y::name;`, then `crate::name`). Code under `#[cfg(test)] mod`
//! (a block, or a file of its own) does not count: a test may reach anywhere.
//!
//! Plain std: a small Rust tokenizer (comments, strings and char literals skipped), not a
//! parser; paths are what it reads, and the unit tests below pin what it finds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Open,
    Close,
    Comma,
    Semi,
    Other(char),
}

fn ident(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

/// The tokens of Rust source that matter for paths; comments, string, byte-string, raw-string
/// and char literals dropped (lifetimes are not char literals).
fn tokens(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            i = skip_while(&c, i, |x| x != '\n');
        } else if ch == '/' && next == Some('*') {
            i = skip_block_comment(&c, i);
        } else if ch == '"' {
            i = skip_string(&c, i + 1);
        } else if let Some(end) = (ch == 'r' || ch == 'b')
            .then(|| raw_or_byte_string(&c, i))
            .flatten()
        {
            i = end;
        } else if ch == '\'' {
            i = skip_char_literal(&c, i);
        } else if ch.is_alphanumeric() || ch == '_' {
            let end = skip_while(&c, i, |x| x.is_alphanumeric() || x == '_');
            out.push(Tok::Ident(c[i..end].iter().collect()));
            i = end;
        } else if ch == ':' && next == Some(':') {
            out.push(Tok::Sep);
            i += 2;
        } else {
            out.push(match ch {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                _ if ch.is_whitespace() => {
                    i += 1;
                    continue;
                }
                _ => Tok::Other(ch),
            });
            i += 1;
        }
    }
    out
}

fn skip_while(c: &[char], mut i: usize, keep: impl Fn(char) -> bool) -> usize {
    while i < c.len() && keep(c[i]) {
        i += 1;
    }
    i
}

/// Block comments nest in Rust.
fn skip_block_comment(c: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i < c.len() {
        match (c[i], c.get(i + 1)) {
            ('/', Some('*')) => {
                depth += 1;
                i += 2;
            }
            ('*', Some('/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    i
}

/// From just after the opening quote to just after the closing one.
fn skip_string(c: &[char], mut i: usize) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// `r"..."`, `r#"..."#`, `b"..."`, `br#"..."#`, `b'x'`: the index after it, if one starts here.
fn raw_or_byte_string(c: &[char], i: usize) -> Option<usize> {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if c[j] == 'b' {
        j += 1;
        match c.get(j) {
            Some('"') => return Some(skip_string(c, j + 1)),
            Some('\'') => return Some(skip_char_literal(c, j)),
            Some('r') => {}
            _ => return None,
        }
    }
    j += 1; // the `r`
    let hashes = skip_while(c, j, |x| x == '#') - j;
    j += hashes;
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(j)
}

/// `'x'`, `'\n'`, `'\u{1F600}'` are skipped; `'a` (a lifetime or label) is not a literal.
fn skip_char_literal(c: &[char], i: usize) -> usize {
    match (c.get(i + 1), c.get(i + 2)) {
        (Some('\\'), _) => skip_while(c, i + 3, |x| x != '\'') + 1,
        (Some(_), Some('\'')) => i + 3,
        _ => i + 1,
    }
}

/// The tokens without the items under `#[cfg(test)] mod NAME { ... }`, and the NAMEs of
/// `#[cfg(test)] mod NAME;` (test modules in files of their own).
fn without_test_modules(t: &[Tok]) -> (Vec<Tok>, Vec<String>) {
    let cfg_test = [
        Tok::Other('#'),
        Tok::Other('['),
        Tok::Ident("cfg".into()),
        Tok::Other('('),
        Tok::Ident("test".into()),
        Tok::Other(')'),
        Tok::Other(']'),
    ];
    let mut out = Vec::new();
    let mut files = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if !t[i..].starts_with(&cfg_test) {
            out.push(t[i].clone());
            i += 1;
            continue;
        }
        let mut j = i + cfg_test.len();
        // Further attributes and a visibility.
        while t.get(j) == Some(&Tok::Other('#')) {
            j = skip_group(t, j + 1, &Tok::Other('['), &Tok::Other(']'));
        }
        if ident(t.get(j)) == Some("pub") {
            j += 1;
            if t.get(j) == Some(&Tok::Other('(')) {
                j = skip_group(t, j, &Tok::Other('('), &Tok::Other(')'));
            }
        }
        let name = ident(t.get(j + 1)).map(str::to_string);
        match (ident(t.get(j)), name, t.get(j + 2)) {
            (Some("mod"), Some(name), Some(Tok::Semi)) => {
                files.push(name);
                i = j + 3;
            }
            (Some("mod"), Some(_), Some(Tok::Open)) => {
                i = skip_group(t, j + 2, &Tok::Open, &Tok::Close)
            }
            _ => {
                out.push(t[i].clone());
                i += 1;
            }
        }
    }
    (out, files)
}

/// From an opening token to just after its matching close.
fn skip_group(t: &[Tok], mut i: usize, open: &Tok, close: &Tok) -> usize {
    let mut depth = 0;
    while i < t.len() {
        if &t[i] == open {
            depth += 1;
        } else if &t[i] == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// The first segment of every path that starts at the crate root, in code whose own module
/// path is `at` (`["probe", "stage"]` for src/probe/stage.rs): `crate::X`, `crate::{X, Y::z}`,
/// and `super::X` when the `super`s reach the root.
fn root_paths(t: &[Tok], at: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..t.len() {
        if i > 0 && t[i - 1] == Tok::Sep {
            continue;
        }
        let start = match ident(t.get(i)) {
            Some("crate") if t.get(i + 1) == Some(&Tok::Sep) => i + 2,
            Some("super") => {
                let mut j = i;
                let mut ups = 0;
                while ident(t.get(j)) == Some("super") && t.get(j + 1) == Some(&Tok::Sep) {
                    ups += 1;
                    j += 2;
                }
                if ups == 0 || ups != at.len() {
                    continue;
                }
                j
            }
            _ => continue,
        };
        out.extend(heads(t, start));
    }
    out
}

/// The first segment of the path at `i`, or of each path of the group `{a, b::c}` there.
fn heads(t: &[Tok], i: usize) -> Vec<String> {
    match t.get(i) {
        Some(Tok::Ident(s)) => vec![s.clone()],
        Some(Tok::Open) => {
            let mut out = Vec::new();
            let mut depth = 0;
            let mut item_start = true;
            for tok in &t[i..] {
                match tok {
                    Tok::Open => {
                        depth += 1;
                        if depth == 1 {
                            continue;
                        }
                    }
                    Tok::Close => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::Comma if depth == 1 => {
                        item_start = true;
                        continue;
                    }
                    Tok::Ident(s) if depth == 1 && item_start && s != "self" => {
                        out.push(s.clone());
                    }
                    _ => {}
                }
                item_start = false;
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The names the root brings in from its modules: `pub use classify::{explain, Tier as T};`
/// gives explain -> classify and T -> classify.
fn reexports(root: &[Tok], modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for i in 0..root.len() {
        if ident(root.get(i)) != Some("use") {
            continue;
        }
        let mut j = i + 1;
        if matches!(ident(root.get(j)), Some("crate" | "self"))
            && root.get(j + 1) == Some(&Tok::Sep)
        {
            j += 2;
        }
        let Some(module) = ident(root.get(j)).filter(|m| modules.contains(*m)) else {
            continue;
        };
        if root.get(j + 1) != Some(&Tok::Sep) {
            continue;
        }
        let mut k = j + 2;
        for name in use_leaves(root, &mut k) {
            out.insert(name, module.to_string());
        }
    }
    out
}

/// The names a use tree binds (the last segment, or its `as` alias); a glob binds none known.
fn use_leaves(t: &[Tok], i: &mut usize) -> Vec<String> {
    loop {
        match t.get(*i) {
            Some(Tok::Ident(name)) => {
                *i += 1;
                if t.get(*i) == Some(&Tok::Sep) {
                    *i += 1;
                    continue;
                }
                if ident(t.get(*i)) == Some("as") {
                    *i += 2;
                    return ident(t.get(*i - 1))
                        .map(str::to_string)
                        .into_iter()
                        .collect();
                }
                return if name == "self" {
                    vec![]
                } else {
                    vec![name.clone()]
                };
            }
            Some(Tok::Open) => {
                *i += 1;
                let mut out = Vec::new();
                while !matches!(t.get(*i), Some(Tok::Close) | None) {
                    out.extend(use_leaves(t, i));
                    if t.get(*i) == Some(&Tok::Comma) {
                        *i += 1;
                    }
                }
                *i += 1;
                return out;
            }
            _ => {
                *i += 1;
                return Vec::new();
            }
        }
    }
}

/// A graph of imports: module -> module it imports -> a file where it does.
type Graph = BTreeMap<String, BTreeMap<String, PathBuf>>;

/// A cycle `[a, b, c, a]`, if the graph has one (depth first, in name order).
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        n: &str,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[pos..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for next in g.get(n).into_iter().flat_map(|e| e.keys()) {
            if let Some(c) = visit(g, next, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// The module path of a file under `src`: src/probe/mod.rs and src/probe.rs are `[probe]`,
/// src/probe/stage.rs `[probe, stage]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Where the file of `mod name;` declared in `file` lives: beside a mod.rs or the root,
/// in the folder named after any other file.
fn child_files(file: &Path, name: &str) -> [PathBuf; 2] {
    let stem = file.file_stem().unwrap().to_string_lossy();
    let dir = file.parent().unwrap();
    let dir = if matches!(stem.as_ref(), "mod" | "lib" | "main") {
        dir.to_path_buf()
    } else {
        dir.join(stem.as_ref())
    };
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
}

/// The import graph between the top-level modules of the crate whose sources are in `src`.
fn crate_graph(src: &Path) -> Graph {
    let files = rust_files(src);
    let is_root = |f: &Path| {
        f.parent() == Some(src)
            && matches!(
                f.file_name().and_then(|n| n.to_str()),
                Some("lib.rs" | "main.rs")
            )
    };
    let mut code = BTreeMap::new();
    let mut test_files = BTreeSet::new();
    for f in &files {
        let (t, test_mods) = without_test_modules(&tokens(&std::fs::read_to_string(f).unwrap()));
        for m in test_mods {
            test_files.extend(child_files(f, &m));
        }
        code.insert(f.clone(), t);
    }
    // A test module's own submodules are tests too.
    let in_test = |f: &Path| {
        test_files.iter().any(|t| {
            let dir = match t.file_name().is_some_and(|n| n == "mod.rs") {
                true => t.parent().unwrap().to_path_buf(),
                false => t.with_extension(""),
            };
            f == t || f.starts_with(dir)
        })
    };
    let modules: BTreeSet<String> = files
        .iter()
        .filter(|f| !is_root(f) && !in_test(f))
        .filter_map(|f| module_path(src, f).first().cloned())
        .collect();
    let mut names = BTreeMap::new();
    for f in files.iter().filter(|f| is_root(f)) {
        names.extend(reexports(&code[f], &modules));
    }
    let mut g: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for f in files.iter().filter(|f| !is_root(f) && !in_test(f)) {
        let at = module_path(src, f);
        let from = at[0].clone();
        for head in root_paths(&code[f], &at) {
            let to = if modules.contains(&head) {
                Some(head)
            } else {
                names.get(&head).cloned()
            };
            if let Some(to) = to.filter(|t| *t != from) {
                g.entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| f.clone());
            }
        }
    }
    g
}

/// Every crate's sources: crates/*/src and the binary's src.
fn crate_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    out.push(root.join("src"));
    out.sort();
    out
}

#[test]
fn no_crate_has_an_import_cycle_between_its_top_level_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let mut edges = 0;
    for src in crate_sources() {
        let g = crate_graph(&src);
        edges += g.values().map(BTreeMap::len).sum::<usize>();
        if let Some(cycle) = find_cycle(&g) {
            let how: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    let file = g[&w[0]][&w[1]]
                        .strip_prefix(root)
                        .unwrap_or(&g[&w[0]][&w[1]])
                        .display()
                        .to_string();
                    format!("  {} imports {} ({file})", w[0], w[1])
                })
                .collect();
            found.push(format!(
                "{}: {}\n{}",
                src.strip_prefix(root).unwrap().display(),
                cycle.join(" -> "),
                how.join("\n")
            ));
        }
    }
    assert!(
        found.is_empty(),
        "import cycles between top-level modules (move what both need to a floor below):\n{}",
        found.join("\n")
    );
    // The walk sees the imports at all (the engine's modules import one another).
    assert!(edges > 20, "only {edges} imports found: the scan is broken");
}

fn graph(edges: &[(&str, &str)]) -> Graph {
    let mut g = Graph::new();
    for (a, b) in edges {
        g.entry(a.to_string())
            .or_default()
            .insert(b.to_string(), PathBuf::from(format!("{a}.rs")));
        g.entry(b.to_string()).or_default();
    }
    g
}

#[test]
fn the_cycle_finder_finds_cycles_and_only_cycles() {
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    // Reached only through a node visited before without a cycle.
    assert_eq!(
        find_cycle(&graph(&[("a", "x"), ("b", "x"), ("x", "y"), ("y", "b")])),
        Some(vec!["x".into(), "y".into(), "b".into(), "x".into()])
    );
}

#[test]
fn the_scan_reads_paths_as_rust_does() {
    let src = r##"
        //! crate::doc_comment is not an import
        use crate::{job, probe::stage::{a, b}, self};
        use crate::limits::Limits;
        use super::sibling;
        use super::super::far;
        use mxtrace_proto::model::crate_like;
        let s = "crate::in_string"; let r = r#"crate::raw "quoted""#; let c = '"';
        fn f<'a>(x: &'a str) -> crate::Late { /* crate::in_comment /* nested */ */ }
        macro_rules! m { () => { $crate::trace::go() } }
        #[cfg(test)]
        mod tests { use crate::test_only; }
        #[cfg(test)]
        #[path = "t.rs"]
        mod more_tests;
    "##;
    let (t, files) = without_test_modules(&tokens(src));
    assert_eq!(files, ["more_tests"]);
    let at = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        root_paths(&t, &at(&["probe"])),
        ["job", "probe", "limits", "sibling", "Late", "trace"]
    );
    assert_eq!(
        root_paths(&t, &at(&["probe", "stage"])),
        ["job", "probe", "limits", "far", "Late", "trace"]
    );
    let root = tokens(
        "pub use classify::{explain, Tier as T, nested::{deep}}; pub use other::x; use std::io;",
    );
    let modules: BTreeSet<String> = ["classify".to_string()].into();
    let names: Vec<(String, String)> = reexports(&root, &modules).into_iter().collect();
    assert_eq!(
        names,
        [
            ("T", "classify"),
            ("deep", "classify"),
            ("explain", "classify")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}
