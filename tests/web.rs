//! The web page in headless Chromium: a real `lector serve` on port 0 with a fresh data folder,
//! a feed of corpus pages on loopback, and `tests/browser/page.mjs` driving the page through
//! the token prompt, errors, preview, conversion, playback, download, embedding, the podcast
//! feed and a phone-sized window.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{rss, rss_item};
use lector_testkit::http::{Reply, TestServer};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser run; conversions of short posts with espeak-ng take seconds.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(150);

/// The screenshots each step of `page.mjs` saves, in order.
const SCREENSHOTS: &[&str] = &[
    "01-open.png",
    "02-token.png",
    "03-error-not-a-feed.png",
    "04-preview.png",
    "05-selected.png",
    "06-converting.png",
    "07-completed.png",
    "08-embed-copied.png",
    "09-embed-page.png",
    "10-embed-in-iframe.png",
    "11-podcast.png",
    "12-failed.png",
    "13-phone.png",
    "14-phone-preview.png",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed when the test ends, passing or panicking.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// A process group (node and the Chromium it starts) killed when the test ends.
struct KilledGroup(Child);

impl Drop for KilledGroup {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status().ok();
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Fails with what to run when the browser or its driver is missing: never a silent skip.
fn require_browser() {
    let driver = root().join("tests/browser/node_modules/playwright-core/package.json");
    assert!(
        Path::new(CHROMIUM).exists() && driver.exists(),
        "the browser test needs Debian's Chromium at {CHROMIUM} and playwright-core in \
         tests/browser/node_modules: run `scripts/tools.sh chromium playwright`"
    );
}

/// `lector serve` on port 0 with a fresh data folder; the address from its first stdout line.
fn start_serve(data: &Path, token: &str) -> (Killed, String, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lector"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("LECTOR_ALLOW_HOSTS", "127.0.0.1")
        .env("LECTOR_API_TOKEN", token)
        .env_remove("LECTOR_PUBLIC_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lector serve starts");
    let stdout = child.stdout.take().expect("serve's stdout");
    let stderr = child.stderr.take().expect("serve's stderr");
    let child = Killed(child);

    // Serve's log, kept to explain a failure.
    let (log_tx, log_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if log_tx.send(line).is_err() {
                break;
            }
        }
    });
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            addr_tx.send(first).ok();
        }
        // Keep draining, so serve never blocks on a full pipe.
        for _ in lines {}
    });
    let first = addr_rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
        let log: Vec<String> = log_rx.try_iter().collect();
        panic!("lector serve printed no address within 60 s; its log:\n{}", log.join("\n"))
    });
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve's first line is not 'listening on URL': {first}"))
        .trim()
        .to_string();
    (child, url, log_rx)
}

/// Runs `node page.mjs ARGS`, killed after `timeout`; its exit status and combined output.
fn run_driver(args: &[&str], token: &str, timeout: Duration) -> (Option<std::process::ExitStatus>, String) {
    let mut child = Command::new("node")
        .arg(root().join("tests/browser/page.mjs"))
        .args(args)
        .env("LECTOR_API_TOKEN", token)
        .current_dir(root().join("tests/browser"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("node runs (install Node.js 20: apt-get install -y nodejs)");
    let mut stdout = child.stdout.take().expect("node's stdout");
    let mut stderr = child.stderr.take().expect("node's stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).ok();
        s
    });
    let mut child = KilledGroup(child);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.0.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => break None,
        }
    };
    // Chromium inherits node's pipes: the output ends only once the whole group is gone.
    drop(child);
    let output = format!("{}{}", out.join().unwrap_or_default(), err.join().unwrap_or_default());
    (status, output)
}

#[test]
fn the_page_previews_converts_plays_downloads_embeds_and_subscribes_in_chromium() {
    require_browser();

    let feeds = TestServer::start();
    feeds.serve_dir("/articles/", root().join("testdata/corpus/articles"));
    let missing = feeds.url("/articles/no-such-post/source.html");
    let feed = rss(
        "Short reads",
        &[
            rss_item("Normalized spaces", &feeds.url("/articles/normalize-spaces/source.html"), None),
            rss_item("Extra line breaks", &feeds.url("/articles/remove-extra-brs/source.html"), None),
            rss_item("A post that is gone", &missing, None),
        ],
    );
    feeds.route("/feed.xml", Reply::rss(feed));

    let data = tempfile::tempdir().expect("a temporary folder");
    // Writes need a token, so the page's way of asking for one is driven too.
    let token = "web-test-token-7f3a";
    let (_serve, base, serve_log) = start_serve(&data.path().join("data"), token);

    let shots: PathBuf = root().join("tests/browser/screenshots");
    std::fs::create_dir_all(&shots).expect("the screenshot folder");
    for entry in std::fs::read_dir(&shots).expect("the screenshot folder").flatten() {
        if entry.path().extension().is_some_and(|e| e == "png") {
            std::fs::remove_file(entry.path()).ok();
        }
    }

    let feed_url = feeds.url("/feed.xml");
    let started = Instant::now();
    let (status, output) = run_driver(
        &[&base, &feed_url, shots.to_str().expect("a UTF-8 path"), &missing],
        token,
        BROWSER_TIMEOUT,
    );
    let log: Vec<String> = serve_log.try_iter().collect();
    let explain = || format!("browser run:\n{output}\nlector serve's log:\n{}", log.join("\n"));
    let status =
        status.unwrap_or_else(|| panic!("the browser run took over {BROWSER_TIMEOUT:?}\n{}", explain()));
    assert!(status.success(), "the browser run failed ({status})\n{}", explain());
    assert!(output.contains("all browser checks passed"), "the driver did not finish\n{}", explain());
    eprintln!("browser run: {:.1} s\n{output}", started.elapsed().as_secs_f64());

    for name in SCREENSHOTS {
        let file = shots.join(name);
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("no screenshot {}: {e}", file.display()));
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG screenshot ({} bytes)",
            file.display(),
            bytes.len()
        );
    }
    let taken = std::fs::read_dir(&shots).expect("the screenshot folder").flatten().count();
    assert_eq!(taken, SCREENSHOTS.len(), "screenshots taken in {}", shots.display());
}
