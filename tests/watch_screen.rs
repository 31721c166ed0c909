//! `watch`'s live screen in a real pseudo-terminal: tmux (tests/support/tmux/install.sh) runs
//! the binary, the test types keys with send-keys and reads the screen with capture-pane, and
//! asks tmux whether the alternate screen is on and the cursor shown. Each test has its own
//! tmux server (a socket named after the test and pid), killed at the end.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::scripted::{esmtp_greeting, expect, line, quit, ScriptedPeer, Step};

fn session() -> Vec<Step> {
    let mut s = esmtp_greeting("mx.contoso.test", &[]);
    s.extend([
        expect("MAIL FROM:"),
        line("250 2.1.0 Ok"),
        expect("RCPT TO:"),
    ]);
    s.extend([line("250 2.1.5 Ok"), expect("RSET"), line("250 2.0.0 Ok")]);
    s.extend(quit());
    s
}

/// A tmux server of our own with one 120x32 window running `command`.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, command: &str) -> Option<Tmux> {
        if !Path::new("/usr/bin/tmux").exists() {
            let why = "tmux is not installed (run tests/support/tmux/install.sh as root)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{why}: CI must run the live-screen tests");
            }
            eprintln!("SKIPPED live-screen test: {why}");
            return None;
        }
        let t = Tmux {
            socket: format!("mxtrace-{name}-{}", std::process::id()),
        };
        let ok = t
            .cmd(&[
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "32",
            ])
            .arg(command)
            .env("NO_COLOR", "1")
            .status()
            .expect("run tmux")
            .success();
        assert!(ok, "tmux new-session failed");
        Some(t)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-L").arg(&self.socket).args(args);
        c
    }

    fn screen(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p"]).output().expect("capture");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `alternate_on cursor_flag`: "1 0" in the live screen, "0 1" once it is given back.
    fn flags(&self) -> String {
        let out = self
            .cmd(&["display-message", "-p", "#{alternate_on} #{cursor_flag}"])
            .output()
            .expect("display");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn keys(&self, keys: &str) {
        assert!(self.cmd(&["send-keys", keys]).status().unwrap().success());
    }

    /// Waits (at most 20 s) until the screen shows `what`.
    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(Instant::now() < deadline, "no {what:?} on screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

/// `mxtrace watch A B ...`, then the exit code shown, and the pane kept open to be read.
fn watch_command(targets: &[String]) -> String {
    format!(
        "'{}' watch {} --rcpt user@contoso.test --interval 1s; echo \"EXIT=$?\"; sleep 60",
        env!("CARGO_BIN_EXE_mxtrace"),
        targets.join(" ")
    )
}

/// The "N probes" of the status line of target `name`.
fn probes_of(screen: &str, name: &str) -> u64 {
    let l = screen
        .lines()
        .find(|l| l.contains(name) && l.contains(" probes"))
        .unwrap();
    let before = l.split(" probes").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn the_screen_renders_takes_keys_and_gives_the_terminal_back() {
    let a = ScriptedPeer::spawn_thread(60, |_| session());
    let b = ScriptedPeer::spawn_thread(60, |_| session());
    let targets = [a.addr.to_string(), b.addr.to_string()];
    let Some(t) = Tmux::start("screen", &watch_command(&targets)) else {
        return;
    };
    let s = t.wait_for("rcpt_to ");
    assert!(s.contains("mxtrace watch  every 1s  2 target(s)"), "{s}");
    assert!(s.contains("Stage") && s.contains("Recent"), "{s}");
    let rcpt = s.lines().find(|l| l.starts_with("rcpt_to ")).unwrap();
    assert!(rcpt.contains(" 250 "), "the current reply: {rcpt}");
    assert!(
        s.contains(&format!("> {}", targets[0])),
        "first target selected: {s}"
    );
    t.wait_for("first probe passed");
    assert_eq!(t.flags(), "1 0", "alternate screen on, cursor hidden");

    // Tab selects the other target; its table follows.
    t.keys("Tab");
    let s = t.wait_for(&format!("> {}", targets[1]));
    assert!(s.contains(&format!(" {} ─", targets[1])), "{s}");

    // p pauses the probes: the counts stand still.
    t.keys("p");
    t.wait_for("PAUSED");
    std::thread::sleep(Duration::from_millis(1500));
    let before = probes_of(&t.screen(), &targets[0]);
    std::thread::sleep(Duration::from_millis(2500));
    let s = t.screen();
    assert_eq!(probes_of(&s, &targets[0]), before, "paused:\n{s}");
    t.keys("p");
    let deadline = Instant::now() + Duration::from_secs(10);
    while probes_of(&t.screen(), &targets[0]) == before {
        assert!(Instant::now() < deadline, "probes resume after p");
        std::thread::sleep(Duration::from_millis(100));
    }

    // r resets the statistics: the counts start again from the next probe.
    let counted = probes_of(&t.screen(), &targets[0]);
    assert!(counted >= 2, "{counted} probes so far");
    t.keys("r");
    let deadline = Instant::now() + Duration::from_secs(10);
    while probes_of(&t.screen(), &targets[0]) >= counted {
        assert!(Instant::now() < deadline, "counts reset after r");
        std::thread::sleep(Duration::from_millis(100));
    }

    // q quits: the summary on the main screen, the cursor back.
    t.keys("q");
    let s = t.wait_for("EXIT=0");
    assert!(s.contains("every 1 s; interrupted)"), "{s}");
    assert!(s.contains("PASS: every target passed every probe"), "{s}");
    assert_eq!(t.flags(), "0 1", "main screen, cursor shown:\n{s}");
}

#[test]
fn ctrl_c_gives_the_terminal_back() {
    let a = ScriptedPeer::spawn_thread(30, |_| session());
    let Some(t) = Tmux::start("ctrlc", &watch_command(&[a.addr.to_string()])) else {
        return;
    };
    t.wait_for("first probe passed");
    assert_eq!(t.flags(), "1 0");
    t.keys("C-c");
    let s = t.wait_for("EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(s.contains("interrupted"), "{s}");
    assert_eq!(t.flags(), "0 1", "{s}");
}

/// A panic in the live screen (forced in debug builds by MXTRACE_TEST_SCREEN_PANIC) gives the
/// terminal back, prints the panic, stops the watch and exits 3 (internal error).
#[test]
fn a_panic_gives_the_terminal_back() {
    let a = ScriptedPeer::spawn_thread(30, |_| session());
    let command = format!(
        "MXTRACE_TEST_SCREEN_PANIC=1 RUST_BACKTRACE=0 {}",
        watch_command(&[a.addr.to_string()])
    );
    let Some(t) = Tmux::start("panic", &command) else {
        return;
    };
    let s = t.wait_for("EXIT=");
    assert!(s.contains("EXIT=3"), "{s}");
    assert!(s.contains("a panic forced by the test"), "{s}");
    assert!(s.contains("internal error"), "{s}");
    assert_eq!(t.flags(), "0 1", "main screen, cursor shown:\n{s}");
}
