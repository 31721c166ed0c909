//! Passwords, access tokens and client secrets: read from an environment variable, a file or a
//! prompt, never from argv, and never printed: `Debug` and `Display` show `<redacted>`.

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

    pub fn from_env(var: &str) -> Result<Secret, SecretError> {
        let var_err = |why| SecretError::Variable {
            var: var.to_string(),
            why,
        };
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Secret(v)),
            Ok(_) => Err(var_err("is empty")),
            Err(std::env::VarError::NotPresent) => Err(var_err("is not set")),
            Err(std::env::VarError::NotUnicode(_)) => Err(var_err("is not valid UTF-8")),
        }
    }

    /// The first line of the file (a trailing newline is not part of the password).
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        Secret::from_file_as(path, "password")
    }

    /// The first line of a file holding `what` (a password, a token, a client secret), which
    /// the error names.
    pub fn from_file_as(path: &Path, what: &'static str) -> Result<Secret, SecretError> {
        let text = std::fs::read_to_string(path).map_err(|e| SecretError::File {
            what,
            path: path.to_path_buf(),
            kind: e.kind(),
        })?;
        let first = text.lines().next().unwrap_or("");
        if first.is_empty() {
            return Err(SecretError::EmptyFile {
                what,
                path: path.to_path_buf(),
            });
        }
        Ok(Secret(first.to_string()))
    }

    /// Prompts on the terminal without echo; refuses when there is no terminal, so a CI job
    /// never hangs waiting for input.
    pub fn prompt(user: &str) -> Result<Secret, SecretError> {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(SecretError::NoTerminal);
        }
        rpassword::prompt_password(format!("Password for {user}: "))
            .map(Secret)
            .map_err(|e| SecretError::Prompt { kind: e.kind() })
    }
}

/// A password that could not be read. Never carries the password itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("environment variable {var} {why}")]
    Variable { var: String, why: &'static str },
    #[error("{what} file {}: {kind}", path.display())]
    File {
        what: &'static str,
        path: std::path::PathBuf,
        kind: std::io::ErrorKind,
    },
    #[error("{what} file {} is empty", path.display())]
    EmptyFile {
        what: &'static str,
        path: std::path::PathBuf,
    },
    /// `SpecError` says which settings give one, worded for the front end.
    #[error("no password given (no terminal to prompt on)")]
    NoTerminal,
    #[error("reading the password: {kind}")]
    Prompt { kind: std::io::ErrorKind },
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
