//! Real MTAs as peers (tests/real_peers.rs, tests/more_peers.rs): where their unpacked
//! binaries are, a free port and a temp directory, a self-signed certificate as on-premises
//! servers present, a daemon in the foreground stopped by its pid, and the probe with the
//! checks every peer test makes.

use super::bin::{mxtrace, stages};
use serde_json::Value;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn peers_dir() -> PathBuf {
    std::env::var_os("MXTRACE_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/mxtrace-peers"))
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The daemon's binary, or None (said on stderr) when it is not unpacked and this is not CI.
pub fn binary(rel: &str, install: &str) -> Option<PathBuf> {
    let bin = peers_dir().join(rel);
    if bin.exists() {
        return Some(bin);
    }
    let why = format!("{} is missing (run {install} as root)", bin.display());
    if in_ci() {
        panic!("{why}: CI must run the real-peer tests");
    }
    eprintln!("SKIPPED real-peer test: {why}");
    None
}

/// True when this process may make these namespaces (root); otherwise says why, and fails
/// under CI=true like a missing daemon.
pub fn can_unshare(flags: &[&str]) -> bool {
    let ok = Command::new("unshare")
        .args(flags)
        .args(["--", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let why = format!(
            "`unshare {}` is not permitted here (needs root)",
            flags.join(" ")
        );
        if in_ci() {
            panic!("{why}: CI must run the real-peer tests");
        }
        eprintln!("SKIPPED real-peer test: {why}");
    }
    ok
}

/// A port for a daemon to listen on, taken below Linux's ephemeral range (32768-60999 by
/// default): a port the kernel handed out for `:0` and we released could be reused at once as
/// the local port of one of the tests' many outgoing connections, and the daemon's bind would
/// then fail. Each call in a process gets a different port; bind is tried before handing it out.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let seed = std::process::id().wrapping_mul(7_919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_micros())
            .unwrap_or(0);
    let _ = NEXT.compare_exchange(u32::MAX, seed % COUNT, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..COUNT {
        let port = FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT;
        let port = u16::try_from(port).expect("below 65536");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}-{}", FIRST + COUNT - 1);
}

/// A fresh directory under /tmp (daemon users must traverse it), removed with the daemon.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = PathBuf::from(format!("/tmp/mxtrace-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// What `openssl req -x509` makes by default, as many on-premises servers present: a
/// self-signed certificate with basicConstraints CA:TRUE. Returns (cert, key).
pub fn openssl_self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(st.success(), "openssl req -x509 failed");
    (cert, key)
}

/// Runs a setup command to completion; its output is shown when it fails.
pub fn run(cmd: &mut Command, stdin: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A daemon started in the foreground; stopped by its pid on drop: `stop` (TERM, or KILL for
/// an `unshare --fork` that ignores TERM), then SIGKILL after 5 s.
pub struct Daemon {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    stop: &'static str,
}

impl Daemon {
    pub fn start(cmd: &mut Command, dir: PathBuf, addr: SocketAddr, stop: &'static str) -> Daemon {
        let log = dir.join("daemon.log");
        let out = std::fs::File::create(&log).expect("daemon log");
        let err = out.try_clone().expect("daemon log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start daemon");
        let d = Daemon {
            child,
            dir,
            log,
            stop,
        };
        d.wait_listening(addr);
        d
    }

    fn wait_listening(&self, addr: SocketAddr) {
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < until,
                "daemon not listening on {addr}:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args([&format!("-{}", self.stop), &pid])
            .status();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn probe(target: &str, args: &[&str]) -> (i32, Value, String) {
    probe_env(target, args, &[])
}

pub fn probe_env(target: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut all = vec!["probe", target, "--json", "--stage-timeout", "10s"];
    all.extend_from_slice(args);
    all.extend([
        "--ehlo",
        "probe.fabrikam.test",
        "--from",
        "probe@fabrikam.test",
    ]);
    let r = mxtrace(&all, env);
    let j = r.json();
    (r.code, j, r.stderr)
}

/// The diagnosis of the first stage named `stage`, with category and layer checked.
pub fn diagnosis<'a>(j: &'a Value, stage: &str, category: &str, layer: &str) -> &'a Value {
    let s = stages(j, stage);
    let d = &s.first().unwrap_or_else(|| panic!("no {stage} in {j}"))["diagnosis"];
    assert_eq!(d["category"], category, "{stage}: {d}");
    assert_eq!(d["layer"], layer, "{stage}: {d}");
    d
}

pub fn cause(d: &Value) -> &str {
    d["cause"].as_str().unwrap_or_default()
}

/// The first `stage`'s reply: (code, enhanced code or null, the lines as one string).
pub fn reply(j: &Value, stage: &str) -> (Value, Value, String) {
    let s = stages(j, stage);
    let r = &s.first().unwrap_or_else(|| panic!("no {stage} in {j}"))["reply"];
    (
        r["code"].clone(),
        r["enhanced"].clone(),
        r["lines"].to_string(),
    )
}
