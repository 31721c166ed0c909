//! Renderers: the same report as a transcript for people or as JSON for tools.

pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod nagios;

/// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
pub fn use_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}
