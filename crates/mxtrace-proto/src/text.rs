//! Bounded text: every string taken from a message or a server is cut to a length before it
//! is kept or shown.

/// `s` in at most `n` characters, the last one `…` when it was cut.
pub fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out = clip_to(s, n.saturating_sub(1));
    out.push('…');
    out
}

/// At most `n` characters of `s`: every text taken from a message is bounded.
pub fn clip_to(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
