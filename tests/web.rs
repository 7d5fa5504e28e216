//! The web page in headless Chromium: a real `lector serve` on port 0 with a fresh data folder,
//! feeds on loopback, and `tests/browser/page.mjs` driving the page the way a person would:
//! the token prompt, errors, preview, conversion, playback, download, embedding, the podcast
//! feed, the read-along player (on the page and in the embed), subscriptions (one of them
//! failing), the library across reloads, dark mode and a phone-sized window; then, in a second
//! browser session, an edited post re-narrated while its previous audio keeps playing.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::{Outage, rss, rss_item};
use lector_testkit::http::{Reply, TestServer};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The first browser run: five short posts converted with espeak-ng, and feed polls.
const MAIN_TIMEOUT: Duration = Duration::from_secs(360);
/// The second: one revision of a short post, its syntheses slowed to half a second each.
const REVISION_TIMEOUT: Duration = Duration::from_secs(150);

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
    "13-read-along.png",
    "14-read-along-keyboard.png",
    "15-embed-read-along.png",
    "16-embed-read-along-in-iframe.png",
    "17-embed-compact.png",
    "18-subscribed.png",
    "19-subscription-paused.png",
    "20-library-reloaded.png",
    "21-library-filtered.png",
    "22-library-paged.png",
    "23-unsubscribed.png",
    "24-dark.png",
    "25-dark-embed.png",
    "26-phone.png",
    "27-phone-preview.png",
    "revision-01-library.png",
    "revision-02-revising.png",
    "revision-03-revised.png",
];

/// The read-along post: two chapters (its headings) of three sentences, carried whole in its
/// feed; `storm` is the second chapter's sentences, which the revision changes.
fn read_along_html(storm: [&str; 3]) -> String {
    format!(
        "<h2>The harbour</h2><p>The keeper walked down to the harbour at dawn. Gulls circled over the \
         empty boats. A cold wind came in from the sea.</p><h2>The storm</h2><p>{}</p>",
        storm.join(" ")
    )
}

const STORM: [&str; 3] = [
    "By noon the sky had turned the colour of slate.",
    "The first drops fell on the lamp room windows.",
    "He lit the great lamp and waited.",
];

const STORM_EDITED: [&str; 3] = [
    "By noon the whole sky had turned the colour of wet slate.",
    "Heavy drops began to hammer on the lamp room windows.",
    "He lit the great lamp, wound the clockwork and waited for the ships.",
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

/// `lector serve` on port 0 with a fresh data folder, speaking through the logging `espeak-ng`
/// of `voice`; the address from its first stdout line.
fn start_serve(data: &Path, token: &str, voice: &Outage) -> (Killed, String, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lector"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("LECTOR_ALLOW_HOSTS", "127.0.0.1")
        .env("LECTOR_API_TOKEN", token)
        .env("PATH", voice.path_env())
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

/// One run of the driver, `phase` of `page.mjs`, which must pass.
fn drive(
    phase: &str,
    config: &serde_json::Value,
    token: &str,
    timeout: Duration,
    log: &mpsc::Receiver<String>,
) {
    let started = Instant::now();
    let (status, output) = run_driver(&[phase, &config.to_string()], token, timeout);
    let log: Vec<String> = log.try_iter().collect();
    let explain = || format!("browser run '{phase}':\n{output}\nlector serve's log:\n{}", log.join("\n"));
    let status = status.unwrap_or_else(|| panic!("the browser run took over {timeout:?}\n{}", explain()));
    assert!(status.success(), "the browser run failed ({status})\n{}", explain());
    assert!(output.contains("all browser checks passed"), "the driver did not finish\n{}", explain());
    eprintln!("browser run '{phase}': {:.1} s\n{output}", started.elapsed().as_secs_f64());
}

#[test]
fn the_page_converts_plays_along_subscribes_and_keeps_its_library_in_chromium() {
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
    let post_url = feeds.url("/posts/lighthouse");
    let publish = |storm: [&str; 3]| {
        let item = rss_item("The lighthouse", &post_url, Some(&read_along_html(storm)));
        feeds.route("/read-along.xml", Reply::rss(rss("Coast notes", &[item])));
    };
    publish(STORM);
    // A feed that answers until its break address is fetched, then fails with HTTP 500.
    let broken = Arc::new(AtomicBool::new(false));
    let flaky = rss("Flaky notes", &[]);
    let is_broken = Arc::clone(&broken);
    feeds.dynamic("/flaky.xml", move |_| {
        if is_broken.load(Ordering::SeqCst) { Reply::status(500) } else { Reply::rss(flaky.clone()) }
    });
    let breaker = Arc::clone(&broken);
    feeds.dynamic("/flaky/break", move |_| {
        breaker.store(true, Ordering::SeqCst);
        Reply::text("broken")
    });

    let data = tempfile::tempdir().expect("a temporary folder");
    let voice = Outage::new(None);
    // Writes need a token, so the page's way of asking for one is driven too.
    let token = "web-test-token-7f3a";
    let (_serve, base, serve_log) = start_serve(&data.path().join("data"), token, &voice);

    let shots: PathBuf = root().join("tests/browser/screenshots");
    std::fs::create_dir_all(&shots).expect("the screenshot folder");
    for entry in std::fs::read_dir(&shots).expect("the screenshot folder").flatten() {
        if entry.path().extension().is_some_and(|e| e == "png") {
            std::fs::remove_file(entry.path()).ok();
        }
    }

    let config = json!({
        "base": base,
        "feed_url": feeds.url("/feed.xml"),
        "failing_post_url": missing,
        "read_along_feed_url": feeds.url("/read-along.xml"),
        "read_along_post_url": post_url,
        "read_along_feed_title": "Coast notes",
        "edited_sentences": STORM_EDITED,
        "flaky_feed_url": feeds.url("/flaky.xml"),
        "flaky_break_url": feeds.url("/flaky/break"),
        "shots": shots.to_str().expect("a UTF-8 path"),
    });
    drive("main", &config, token, MAIN_TIMEOUT, &serve_log);

    // The post is edited, and every synthesis now takes half a second, so that the revision is
    // seen under way: a new browser, the library as the server keeps it, and the edited post
    // converted again.
    publish(STORM_EDITED);
    voice.slow(true);
    drive("revision", &config, token, REVISION_TIMEOUT, &serve_log);
    voice.slow(false);

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
    let mut taken: Vec<String> = std::fs::read_dir(&shots)
        .expect("the screenshot folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    taken.sort();
    let mut expected: Vec<String> = SCREENSHOTS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(taken, expected, "screenshots taken in {}", shots.display());
}
