//! The voices of a local run, end to end through the `lector` binary: a post converted with the
//! Piper voice (installed by `scripts/tools.sh piper`), the voices `lector serve` offers, and
//! Amazon Polly asked for without the AWS settings it needs; French and German pages read by
//! French and German voices.

mod common;

use std::path::{Path, PathBuf};

use common::{Http, Lector, Serve, decode_mp3_seconds, rss, rss_item};
use lector_testkit::http::{Reply, TestServer};

fn piper_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/piper");
    assert!(
        dir.join("lib/libonnxruntime.so").is_file() && dir.join("voices/en_US-joe-medium.onnx").is_file(),
        "the Piper voice is not installed in {}: run `scripts/tools.sh piper`",
        dir.display()
    );
    dir
}

/// The Piper variables: the installed runtime and voices, noise at 0 (the same audio each run).
fn piper_env() -> Vec<(&'static str, String)> {
    let dir = piper_dir();
    vec![
        ("LECTOR_ONNXRUNTIME", dir.join("lib/libonnxruntime.so").display().to_string()),
        ("LECTOR_VOICES", dir.join("voices").display().to_string()),
        ("LECTOR_PIPER_NOISE", "0".into()),
    ]
}

const POST: &str = "<h2>A natural voice</h2><p>This post is read by a neural voice that runs on this machine. \
    It has several sentences, and a list.</p><ul><li>The first item.</li><li>The second item.</li></ul>\
    <p>Dr. Smith measured 3.14 seconds, e.g. on a good day. Was it right? Yes!</p>";

#[test]
fn a_post_converts_with_the_piper_voice_and_its_mp3_lasts_as_long_as_reported() {
    let server = TestServer::start();
    let feed = rss("Neural", &[rss_item("Piper post", &server.url("/posts/piper"), Some(POST))]);
    server.route("/feed.xml", Reply::rss(feed));
    let lector = Lector::new();
    let out = lector.out();
    let mut command = lector.command(&[
        "convert",
        &server.url("/feed.xml"),
        "--engine",
        "piper",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    for (k, v) in piper_env() {
        command.env(k, v);
    }
    let run = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let line: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["state"], "completed", "{line:#}");
    let id = line["conversion_id"].as_str().unwrap();

    let requested = lector.events(id).into_iter().find(|e| e["type"] == "ConversionRequested").unwrap();
    assert_eq!(requested["data"]["engine"], "piper");
    // No voice named: the Piper voice that speaks the post's language reads it.
    assert_eq!(requested["data"]["voice"], "auto");
    assert_eq!(lector.status(id)["voice_used"], "en_US-joe-medium");
    lector.assert_events_match_schemas(id);

    let audio = PathBuf::from(line["audio"].as_str().unwrap());
    let decoded = decode_mp3_seconds(&audio);
    let reported = line["duration_seconds"].as_f64().unwrap();
    assert!((decoded - reported).abs() < 0.1, "decodes to {decoded:.2} s, reported {reported:.2} s");
    let status = lector.status(id);
    assert_eq!(status["duration_seconds"].as_f64(), Some(reported));
    // 40 words at a speaking pace, with the pauses of a heading, a list and paragraphs.
    assert!((10.0..=40.0).contains(&decoded), "{decoded:.1} s for 40 words");
}

#[test]
fn serve_offers_piper_beside_espeak_with_the_licence_note_and_espeak_stays_the_default() {
    let lector = Lector::new();
    let env = piper_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let serve = Serve::start(&lector, &env);
    let voices = Http::new().get(&serve.url("/voices")).json();
    let data = &voices["data"];
    assert_eq!(data["default_engine"], "espeak");
    // No voice named: each post's language decides.
    assert_eq!(data["default_voice"], "auto");
    let list = data["voices"].as_array().unwrap();
    let joe = list.iter().find(|v| v["id"] == "en_US-joe-medium").expect("the Piper voice is offered");
    assert_eq!(joe["engines"], serde_json::json!(["piper"]));
    assert_eq!((joe["language"].as_str(), joe["gender"].as_str()), (Some("en-US"), Some("Male")));
    assert!(joe["licence"].as_str().unwrap().contains("commercial"), "{joe:#}");
    let fr = list.iter().find(|v| v["id"] == "fr-fr").expect("espeak-ng's French");
    assert_eq!(
        (fr["language"].as_str(), fr["engines"].clone()),
        (Some("fr-FR"), serde_json::json!(["espeak"]))
    );
    assert!(fr.get("licence").is_none(), "no note where there is nothing to know: {fr:#}");
}

#[test]
fn asking_for_piper_where_it_is_not_installed_says_how_to_install_it() {
    let lector = Lector::new();
    let empty = tempfile::tempdir().unwrap();
    let feed = empty.path().join("feed.xml");
    std::fs::write(&feed, rss("F", &[rss_item("P", "http://127.0.0.1/p", Some("<p>Hello there.</p>"))]))
        .unwrap();
    let run = lector
        .command(&["convert", feed.to_str().unwrap(), "--engine", "piper"])
        .env("LECTOR_VOICES", empty.path())
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("scripts/tools.sh piper"), "{stderr}");
}

/// `lector` with nothing of the environment but the tests' own variables, no AWS profile or
/// home folder to find settings in, and no instance metadata to ask.
fn bare_lector(lector: &Lector, home: &Path, args: &[&str]) -> std::process::Output {
    let mut command = lector.command(args);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("LECTOR_DATA", lector.data())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"));
    command.output().unwrap()
}

#[cfg(feature = "aws")]
#[test]
fn polly_without_a_region_or_credentials_fails_at_start_saying_which() {
    let lector = Lector::new();
    let home = tempfile::tempdir().unwrap();
    let feed = home.path().join("feed.xml");
    std::fs::write(&feed, rss("F", &[rss_item("P", "http://127.0.0.1/p", Some("<p>Hello there.</p>"))]))
        .unwrap();
    let feed = feed.to_str().unwrap();

    for command in [
        &["convert", feed, "--engine", "polly"][..],
        &["serve", "--engine", "polly", "--addr", "127.0.0.1:0"],
    ] {
        let run = bare_lector(&lector, home.path(), command);
        assert!(!run.status.success(), "{command:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains("needs an AWS region") && stderr.contains("AWS_REGION"),
            "{command:?}: {stderr}"
        );
    }

    let mut with_region = lector.command(&["convert", feed, "--engine", "polly"]);
    let run = with_region
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("LECTOR_DATA", lector.data())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.path().join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("no-credentials"))
        .env("AWS_REGION", "eu-west-1")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("needs AWS credentials") && stderr.contains("AWS_ACCESS_KEY_ID"), "{stderr}");
    assert!(!lector.data().join("lector.sqlite").exists(), "nothing ran before the check");
}

#[cfg(feature = "aws")]
#[test]
fn serve_with_polly_offers_pollys_engines_and_voices_beside_the_local_ones() {
    let moto = lector_testkit::services::moto();
    let lector = Lector::new();
    // No Piper voice in this run.
    let no_voices = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &lector,
        &[
            ("LECTOR_VOICES", no_voices.path().to_str().unwrap()),
            ("LECTOR_ENGINE", "polly"),
            ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let voices = Http::new().get(&serve.url("/voices")).json();
    let data = &voices["data"];
    assert_eq!(data["default_engine"], "neural");
    let list = data["voices"].as_array().unwrap();
    // No voice named: the engine's voice for each post's language.
    assert_eq!(data["default_voice"], "auto");
    assert!(
        list.iter()
            .any(|v| v["language"] == "en-US" && v["engines"].as_array().unwrap().contains(&"neural".into())),
        "an English voice of the default engine"
    );
    let joanna = list.iter().find(|v| v["id"] == "Joanna").expect("Polly's voices, from DescribeVoices");
    assert_eq!((joanna["gender"].as_str(), joanna["language"].as_str()), (Some("Female"), Some("en-US")));
    assert!(list.iter().any(|v| v["id"] == "en-us" && v["engines"] == serde_json::json!(["espeak"])));

    // A request on an engine this run offers is accepted; one it does not is refused by name.
    let http = Http::new();
    let accepted = http.post_json(
        &serve.url("/feeds/preview"),
        &serde_json::json!({"url": serve.url("/sample/feed.xml"), "engine": "standard", "voice": "Joanna"}),
    );
    assert_eq!(accepted.status, 200, "{}", String::from_utf8_lossy(&accepted.body));
    assert_eq!(accepted.json()["data"]["engine"], "standard");
    let refused = http.post_json(
        &serve.url("/feeds/preview"),
        &serde_json::json!({"url": serve.url("/sample/feed.xml"), "engine": "piper"}),
    );
    assert_eq!(refused.status, 400, "{}", String::from_utf8_lossy(&refused.body));
}

const FRENCH: &str = "<p>Le gardien du phare montait chaque soir les cent marches de la tour. \
    Il allumait la lampe avant que la tempête ne vienne de l'ouest. Les bateaux du port \
    rentraient alors sans crainte, guidés par la lumière qui tournait au-dessus des rochers.</p>";
const GERMAN: &str = "<p>Der Wärter des Leuchtturms stieg jeden Abend die hundert Stufen des Turms \
    hinauf. Er zündete die Lampe an, bevor der Sturm aus dem Westen kam. Die Boote im Hafen \
    kehrten dann ohne Furcht zurück, geleitet von dem Licht über den Felsen.</p>";

/// A page in `language`'s words, declared in its `<html lang>` when `declared`.
fn page(title: &str, body: &str, declared: Option<&str>) -> String {
    let lang = declared.map(|l| format!(" lang=\"{l}\"")).unwrap_or_default();
    format!(
        "<!doctype html><html{lang}><head><title>{title}</title></head><body><article><h1>{title}</h1>{body}</article></body></html>"
    )
}

#[test]
fn a_french_and_a_german_page_are_read_by_french_and_german_voices() {
    let server = TestServer::start();
    // One says its language, the other is recognised from its words.
    server.route("/fr", Reply::html(page("Le phare", FRENCH, Some("fr"))));
    server.route("/de", Reply::html(page("Der Leuchtturm", GERMAN, None)));
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[]);
    let http = Http::new();
    for (path, language) in [("/fr", "fr"), ("/de", "de")] {
        let answer =
            http.post_json(&serve.url("/conversions"), &serde_json::json!({"url": server.url(path)}));
        assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
        let status_url = answer.json()["data"]["status_url"].as_str().unwrap().to_owned();
        let status = http.wait_final(&status_url, std::time::Duration::from_secs(120));
        assert_eq!(status["state"], "completed", "{status:#}");
        assert_eq!(status["language"], language, "{status:#}");
        let used = status["voice_used"].as_str().unwrap();
        assert!(used.starts_with(language), "{path} is read by {used}, not a voice of {language}");
        assert!(status["language_note"].is_null(), "a voice of its own language: {status:#}");
        let id = status["conversion_id"].as_str().unwrap();
        let events = http.get(&serve.url(&format!("/conversions/{id}/events"))).json()["data"].clone();
        let fetched =
            events.as_array().unwrap().iter().find(|e| e["type"] == "ArticleFetched").unwrap().clone();
        assert_eq!(fetched["data"]["language"], language);
    }
}
