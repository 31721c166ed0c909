//! The OAuth 2.0 lab server (tests/support/oauth/server.sh: Glewlwyd on loopback) from Rust:
//! started in a fresh directory on a free port, stopped by its pid (server.sh stop checks the
//! pid's command line) when the guard drops. And a canned HTTP responder for what no real
//! server here does: Entra ID's AADSTS error JSON, a token endpoint that hangs or fails. And
//! a real HTTP proxy (tinyproxy) for HTTPS_PROXY.

use super::peers::free_port;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct OAuthServer {
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oauth/server.sh")
}

impl OAuthServer {
    /// Starts Glewlwyd (HTTPS with `tls`), or None with "SKIPPED" on stderr when it is not
    /// installed; with CI=true a missing server is a failure.
    pub fn start(tls: bool) -> Option<OAuthServer> {
        if !Path::new("/usr/bin/glewlwyd").exists() {
            super::postfix::skip(
                "Glewlwyd is not installed (run tests/support/oauth/install.sh as root)",
            );
            return None;
        }
        let dir = super::postfix::fresh_dir("oauth");
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .arg("start")
            .arg(&dir)
            .arg(free_port().to_string());
        if tls {
            cmd.env("MXTRACE_OAUTH_TLS", "1");
        }
        let out = cmd.output().expect("run server.sh");
        let mut server = OAuthServer {
            dir,
            env: HashMap::new(),
        };
        assert!(
            out.status.success(),
            "server.sh start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(server.dir.join("oauth.env")).expect("oauth.env");
        server.env = super::postfix::parse_env(&env);
        Some(server)
    }

    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("oauth.env has no {key}"))
    }

    /// `server.sh ARGS...`, its stdout trimmed.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(script())
            .arg(args[0])
            .arg(&self.dir)
            .args(&args[1..])
            .output()
            .expect("run server.sh");
        assert!(
            out.status.success(),
            "server.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A file in the server's directory with its CA and `lab_ca` (PEM): one `--tls-ca-file`
    /// for the token endpoint and the lab's TLS.
    pub fn ca_with(&self, lab_ca: &str) -> PathBuf {
        let both = self.dir.join("both-ca.pem");
        let pems = std::fs::read_to_string(self.get("OAUTH_CA_FILE")).expect("OAuth CA")
            + &std::fs::read_to_string(lab_ca).expect("lab CA");
        std::fs::write(&both, pems).expect("write both-ca.pem");
        both
    }

    /// A fresh access token: `user` (password grant) or `client` (client credentials).
    pub fn token(&self, kind: &str) -> String {
        self.run(&["token", kind])
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the responder does with each connection, in turn.
#[derive(Clone)]
pub enum Answer {
    /// Reads the request and writes these bytes, then closes.
    Raw(&'static [u8]),
    /// Reads the request and never answers (until the test ends).
    Hang,
}

/// A loopback HTTP responder on a thread: `http://127.0.0.1:PORT/token`.
pub struct Responder {
    pub url: String,
}

impl Responder {
    pub fn start(answers: Vec<Answer>) -> Responder {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/token", l.local_addr().expect("addr"));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for answer in answers {
                let Ok((mut s, _)) = l.accept() else { return };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf);
                match answer {
                    Answer::Raw(bytes) => {
                        let _ = s.write_all(bytes);
                    }
                    Answer::Hang => held.push(s),
                }
            }
            // Kept open until the process ends, as a hung server would.
            std::thread::sleep(Duration::from_secs(60));
            drop(held);
        });
        Responder { url }
    }
}

/// tinyproxy on loopback (foreground, its own config and log in `dir`), killed by its pid.
pub struct TinyProxy {
    pub port: u16,
    pub log: PathBuf,
    child: std::process::Child,
}

impl TinyProxy {
    /// Starts it, or None with "SKIPPED" (a failure under CI=true) when it is not installed.
    pub fn start(dir: &Path) -> Option<TinyProxy> {
        if !Path::new("/usr/bin/tinyproxy").exists() {
            super::postfix::skip(
                "tinyproxy is not installed (run tests/support/oauth/install.sh as root)",
            );
            return None;
        }
        let port = free_port();
        let log = dir.join("tinyproxy.log");
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\n\
                 LogFile \"{}\"\nLogLevel Connect\nAllow 127.0.0.1\n",
                log.display()
            ),
        )
        .expect("tinyproxy.conf");
        let child = Command::new("/usr/bin/tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tinyproxy");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "tinyproxy did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(TinyProxy { port, log, child })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TinyProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
