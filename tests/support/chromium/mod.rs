//! Headless Chromium (Debian's `chromium`, installed by tests/support/chromium/install.sh) for the
//! HTML report tests: a screenshot to check the page is not blank, and `--dump-dom` to read
//! what it rendered. Chromium resolves no name (every host maps to NOTFOUND), gets a profile of
//! its own per call, and is killed by pid if it overruns. Include with
//! `#[path = "support/chromium/mod.rs"] mod chromium;`
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The window, and so the screenshot, in pixels.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 2000;
/// One Chromium run; a headless render takes seconds even on a busy machine.
const LIMIT: Duration = Duration::from_secs(90);

pub struct Chromium {
    bin: PathBuf,
}

/// Where screenshots and the pages they show are kept (CI artifacts, never committed).
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/html-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Chromium {
    /// The installed browser. Under CI=true a missing one fails the test; elsewhere the test
    /// says it skipped and gets None.
    pub fn find(test: &str) -> Option<Chromium> {
        let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        match found {
            Some(bin) => Some(Chromium { bin }),
            None if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("{test}: chromium is not installed (tests/support/chromium/install.sh)")
            }
            None => {
                eprintln!("{test}: skipped: chromium is not installed");
                None
            }
        }
    }

    /// Renders `page` to `png` at WIDTH x HEIGHT.
    pub fn screenshot(&self, page: &Path, png: &Path) {
        let shot = format!("--screenshot={}", png.display());
        let size = format!("--window-size={WIDTH},{HEIGHT}");
        self.run(&[&shot, &size, "--hide-scrollbars"], page);
        assert!(png.exists(), "no screenshot at {}", png.display());
    }

    /// The DOM after rendering, serialized.
    pub fn dump_dom(&self, page: &Path) -> String {
        self.run(&["--dump-dom"], page)
    }

    fn run(&self, extra: &[&str], page: &Path) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "mxtrace-chromium-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let url = format!("file://{}", page.canonicalize().unwrap().display());
        let mut child = Command::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                // Nothing may be fetched: every name fails to resolve.
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            stdout.read_to_string(&mut s).map(|_| s)
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > LIMIT {
                // By pid: this child only.
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&profile);
                panic!("chromium did not finish {extra:?} {url} in {LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = reader.join().unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&profile);
        assert!(status.success(), "chromium {extra:?} {url}: {status}");
        out
    }
}

/// A PNG's width and height, from its IHDR chunk (PNG spec 11.2.2: right after the 8-byte
/// signature and the chunk's length and type).
pub fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(png.get(..8), Some(&b"\x89PNG\r\n\x1a\n"[..]), "not a PNG");
    assert_eq!(png.get(12..16), Some(&b"IHDR"[..]), "no IHDR first");
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Screenshots `page` as `NAME.png` under `artifacts()` and checks it is the window's size and
/// not blank: a blank page of the same size compresses to a fraction of a rendered report.
pub fn assert_renders(chromium: &Chromium, page: &Path, name: &str) {
    let dir = artifacts();
    let blank_page = dir.join(format!("{name}-blank.html"));
    std::fs::write(&blank_page, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let blank_png = dir.join(format!("{name}-blank.png"));
    chromium.screenshot(&blank_page, &blank_png);
    let png_path = dir.join(format!("{name}.png"));
    chromium.screenshot(page, &png_path);
    let png = std::fs::read(&png_path).unwrap();
    let blank = std::fs::read(&blank_png).unwrap();
    assert_eq!(png_size(&png), (WIDTH, HEIGHT), "{name}.png");
    assert!(
        png.len() > blank.len() * 5,
        "{name}.png looks blank: {} bytes, a blank page {} bytes",
        png.len(),
        blank.len()
    );
}
