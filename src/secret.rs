//! Passwords: read from an environment variable, a file or a prompt, never from argv, and never
//! printed: `Debug` and `Display` show `<redacted>`.

use std::fmt;
use std::path::Path;

/// What the transcript and JSON show in place of a secret.
pub const REDACTED: &str = "<redacted>";

#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn from_env(var: &str) -> Result<Secret, String> {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Secret(v)),
            Ok(_) => Err(format!("environment variable {var} is empty")),
            Err(std::env::VarError::NotPresent) => {
                Err(format!("environment variable {var} is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("environment variable {var} is not valid UTF-8"))
            }
        }
    }

    /// The first line of the file (a trailing newline is not part of the password).
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("password file {}: {}", path.display(), e.kind()))?;
        let first = text.lines().next().unwrap_or("");
        if first.is_empty() {
            return Err(format!("password file {} is empty", path.display()));
        }
        Ok(Secret(first.to_string()))
    }

    /// Prompts on the terminal without echo; refuses when there is no terminal, so a CI job
    /// never hangs waiting for input.
    pub fn prompt(user: &str) -> Result<Secret, String> {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err("no password given: use --auth-password-env VAR or \
                        --auth-password-file FILE (no terminal to prompt on)"
                .to_string());
        }
        rpassword::prompt_password(format!("Password for {user}: "))
            .map(Secret)
            .map_err(|e| format!("reading the password: {}", e.kind()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}
