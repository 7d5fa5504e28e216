//! Pronunciation rules end to end through `lector serve`: rules set through the API change the
//! spoken text (a substitution) or phonemes (IPA) of exactly the sentences that hold their
//! words and nothing else; changing one rule re-narrates only the sentences it touches; a part
//! of a post marked for skipping is not read; bad rules are refused naming the rule.
//!
//! Every synthesis goes through an `espeak-ng` placed first on `PATH` that keeps each input it
//! is given, so the test reads exactly what was sent to the voice.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use common::{Lector, Serve, rss, rss_item, which};
use lector_testkit::http::{Reply, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const TOKEN: &str = "pronunciation-test-token";

/// An `espeak-ng` that keeps every synthesis input as a file of its own, then speaks it.
struct Recorder {
    dir: tempfile::TempDir,
}

impl Recorder {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let inputs = dir.path().join("inputs");
        std::fs::create_dir(&bin).unwrap();
        std::fs::create_dir(&inputs).unwrap();
        let script = format!(
            r#"#!/bin/sh
case "$1" in --voices|--version) exec "{real}" "$@";; esac
input=$(cat)
file=$(mktemp "{inputs}/input.XXXXXXXX")
printf '%s' "$input" > "$file"
printf '%s' "$input" | exec "{real}" "$@"
"#,
            real = which("espeak-ng").display(),
            inputs = inputs.display(),
        );
        let path = bin.join("espeak-ng");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    fn path_env(&self) -> String {
        format!("{}:{}", self.dir.path().join("bin").display(), std::env::var("PATH").unwrap_or_default())
    }

    /// Every input so far, by file.
    fn inputs(&self) -> Vec<(PathBuf, String)> {
        let mut all: Vec<(PathBuf, String)> = std::fs::read_dir(self.dir.path().join("inputs"))
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                (path, text)
            })
            .collect();
        all.sort();
        all
    }

    /// The inputs given since `before` was taken.
    fn since(&self, before: &[(PathBuf, String)]) -> Vec<String> {
        let seen: BTreeSet<&PathBuf> = before.iter().map(|(p, _)| p).collect();
        self.inputs().into_iter().filter(|(p, _)| !seen.contains(p)).map(|(_, t)| t).collect()
    }
}

/// Sentences: some name K8s, some Lector, one both, the rest neither.
fn sentences() -> Vec<String> {
    vec![
        "The harbour was quiet before dawn.".into(),
        "We moved the cluster to K8s last spring.".into(),
        "Lector reads every post aloud.".into(),
        "The gulls circled over the pier.".into(),
        "Running Lector on K8s took an afternoon.".into(),
        "Nobody noticed the fog until noon.".into(),
        "A K8s upgrade broke nothing at all.".into(),
        "The ferry left at seven sharp.".into(),
        "Ask the team about Lectors and k8s in lower case.".into(),
    ]
}

fn post_html() -> String {
    let s = sentences();
    format!(
        "<p>{}</p><p data-lector-skip>Sponsored words from a shipping company.</p><p>{}</p>\
         <div class=\"aside lector-skip\"><p>Boxed words about the weather.</p></div><p>{}</p>",
        s[..3].join(" "),
        s[3..6].join(" "),
        s[6..].join(" ")
    )
}

struct Client {
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Client {
    fn new() -> Self {
        Self {
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            rt: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
        }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        self.rt.block_on(async {
            let response = request.send().await.expect("answered");
            let status = response.status().as_u16();
            let body = response.bytes().await.expect("a body");
            let value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
            (status, value)
        })
    }

    fn get(&self, url: &str) -> (u16, Value) {
        self.send(self.client.get(url))
    }

    fn write(&self, method: reqwest::Method, url: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request)
    }

    fn put_rules(&self, url: &str, rules: Value) -> (u16, Value) {
        self.write(reqwest::Method::PUT, url, &json!({ "rules": rules }), Some(TOKEN))
    }
}

/// Poll until the conversion's audio is of `revision`.
fn wait_revision(client: &Client, serve: &Serve, id: &str, revision: u64) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, answer) = client.get(&serve.url(&format!("/conversions/{id}")));
        let data = answer["data"].clone();
        if data["audio_revision"] == revision && data["state"] == "completed" {
            return data;
        }
        assert!(data["state"] != "failed", "revision {revision} failed: {data:#}");
        assert!(std::time::Instant::now() < deadline, "revision {revision} not done: {data:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rules_change_exactly_the_sentences_they_name_and_skipped_parts_are_not_read() {
    let voice = Recorder::new();
    let blog = TestServer::start();
    let item = rss_item("Harbour notes", &blog.url("/posts/harbour"), Some(&post_html()));
    blog.route("/feed.xml", Reply::rss(rss("Harbour", &[item])));
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[("PATH", &voice.path_env()), ("LECTOR_API_TOKEN", TOKEN)]);
    let client = Client::new();
    let submission = json!({"url": blog.url("/posts/harbour"), "feed_url": blog.url("/feed.xml")});
    let submit = |expect: &str| -> String {
        let (status, answer) =
            client.write(reqwest::Method::POST, &serve.url("/conversions"), &submission, Some(TOKEN));
        assert_eq!(status, 202, "{answer:#}");
        assert_eq!(answer["status"], expect, "{answer:#}");
        answer["data"]["conversion_id"].as_str().unwrap().to_owned()
    };

    // No rules yet: every sentence is spoken as written, the skipped parts not at all.
    let (status, empty) = client.get(&serve.url("/pronunciations"));
    assert_eq!((status, &empty["data"]), (200, &json!({"rules": []})));
    let id = submit("accepted");
    let first = wait_revision(&client, &serve, &id, 1);
    let plain = voice.inputs();
    assert_eq!(first["synthesis"]["units_synthesized"], sentences().len(), "{first:#}");
    assert_eq!(plain.len(), sentences().len());
    for (_, input) in &plain {
        assert!(!input.contains("Sponsored") && !input.contains("Boxed"), "a skipped part was read: {input}");
        assert!(!input.contains("<sub") && !input.contains("[["), "no rule yet: {input}");
    }
    let (_, transcript) = client.get(first["transcript_json_url"].as_str().unwrap());
    let transcript = transcript.to_string();
    assert!(transcript.contains("harbour was quiet") && !transcript.contains("Sponsored"), "{transcript}");

    // A bad rule set is refused, naming the rule; a write needs the token.
    let (status, refused) = client.put_rules(
        &serve.url("/pronunciations"),
        json!([{"kind": "substitute", "match": "K8s", "say": "Kubernetes"}, {"kind": "ipa", "match": "Lector", "phonemes": "LEK-tor"}]),
    );
    assert_eq!(status, 400, "{refused:#}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.starts_with("rule 1 (\"Lector\")") && message.contains("not IPA"), "{message}");
    let (status, _) = client.put_rules(
        &serve.url("/pronunciations"),
        json!([{"kind": "say_as", "match": "x", "interpret_as": "shouting"}]),
    );
    assert_eq!(status, 400);
    let (status, _) =
        client.write(reqwest::Method::PUT, &serve.url("/pronunciations"), &json!({"rules": []}), None);
    assert_eq!(status, 401, "a write without the token");
    let (status, missing) = client.get(&serve.url("/feeds/0123456789abcdef/pronunciations"));
    assert_eq!(status, 404, "{missing:#}");

    // A substitution and an IPA rule: only the sentences holding their words are spoken again,
    // each with the rule in what espeak-ng is given.
    let rules = json!([
        {"kind": "substitute", "match": "K8s", "say": "Kubernetes"},
        {"kind": "ipa", "match": "Lector", "phonemes": "ˈlɛktɚ"},
    ]);
    let (status, stored) = client.put_rules(&serve.url("/pronunciations"), rules.clone());
    assert_eq!(status, 200, "{stored:#}");
    assert_eq!(stored["data"]["rules"], rules);
    let (_, read) = client.get(&serve.url("/pronunciations"));
    assert_eq!(read["data"]["rules"], rules);
    let before = voice.inputs();
    assert_eq!(submit("accepted"), id, "the same post read with new rules is a new revision");
    let second = wait_revision(&client, &serve, &id, 2);
    let spoken = voice.since(&before);
    let touched: Vec<String> =
        sentences().into_iter().filter(|s| s.contains("K8s") || s.contains("Lector ")).collect();
    assert_eq!(touched.len(), 4, "the test's own sentences: {touched:?}");
    assert_eq!(spoken.len(), touched.len(), "only the sentences with K8s or Lector: {spoken:#?}");
    assert_eq!(second["synthesis"]["units_synthesized"], touched.len(), "{second:#}");
    assert_eq!(second["synthesis"]["units_reused"], sentences().len() - touched.len());
    let sub = "<sub alias=\"Kubernetes\">K8s</sub>";
    let ipa = "[['lEkt3]]";
    for (expected, has_sub, has_ipa) in [
        ("We moved the cluster to ", true, false),
        (" reads every post aloud.", false, true),
        ("Running ", true, true),
        (" upgrade broke nothing at all.", true, false),
    ] {
        let input = spoken
            .iter()
            .find(|i| i.contains(expected))
            .unwrap_or_else(|| panic!("no input holds {expected:?}: {spoken:#?}"));
        assert_eq!(input.contains(sub), has_sub, "{input}");
        assert_eq!(input.contains(ipa), has_ipa, "{input}");
        assert!(!input.contains("K8s") || input.contains(sub), "K8s outside the rule: {input}");
    }
    // Lower case, another word and the sentences without either are as they were.
    for (_, input) in &plain {
        if input.contains("Lectors and k8s") || input.contains("harbour was quiet") {
            assert!(!spoken.contains(input), "an untouched sentence was spoken again: {input}");
        }
    }

    // One rule changed: only the sentences holding its word are spoken again.
    let changed = json!([
        {"kind": "substitute", "match": "K8s", "say": "Kubernetes"},
        {"kind": "ipa", "match": "Lector", "phonemes": "ˈlɛktər"},
    ]);
    assert_eq!(client.put_rules(&serve.url("/pronunciations"), changed).0, 200);
    let before = voice.inputs();
    submit("accepted");
    let third = wait_revision(&client, &serve, &id, 3);
    let spoken = voice.since(&before);
    assert_eq!(spoken.len(), 2, "the two sentences with Lector: {spoken:#?}");
    assert!(spoken.iter().all(|i| i.contains("[['lEkt@r]]")), "{spoken:#?}");
    assert_eq!(third["synthesis"]["units_synthesized"], 2, "{third:#}");

    // Nothing changed: the same post again is unchanged.
    let (status, again) =
        client.write(reqwest::Method::POST, &serve.url("/conversions"), &submission, Some(TOKEN));
    assert_eq!((status, again["status"].as_str()), (200, Some("skipped")), "{again:#}");
    lector.assert_events_match_schemas(&id);
}

#[test]
fn a_subscriptions_rules_are_kept_on_its_stream_and_shown_with_it() {
    let voice = Recorder::new();
    let blog = TestServer::start();
    let item = rss_item("Harbour notes", &blog.url("/posts/harbour"), Some(&post_html()));
    blog.route("/feed.xml", Reply::rss(rss("Harbour", &[item])));
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[("PATH", &voice.path_env()), ("LECTOR_API_TOKEN", TOKEN)]);
    let client = Client::new();
    let (status, subscribed) = client.write(
        reqwest::Method::POST,
        &serve.url("/feeds"),
        &json!({"url": blog.url("/feed.xml"), "auto_convert": false, "backfill": 0}),
        Some(TOKEN),
    );
    assert!(status == 201 || status == 200, "{subscribed:#}");
    let feed_id = subscribed["data"]["feed_id"].as_str().unwrap().to_owned();
    let feed_rules = json!([{"kind": "say_as", "match": "K8s", "interpret_as": "characters"}]);
    let (status, stored) =
        client.put_rules(&serve.url(&format!("/feeds/{feed_id}/pronunciations")), feed_rules.clone());
    assert_eq!(status, 200, "{stored:#}");
    assert_eq!(stored["data"]["rules"], feed_rules);
    let (_, read) = client.get(&serve.url(&format!("/feeds/{feed_id}/pronunciations")));
    assert_eq!(read["data"]["rules"], feed_rules);
    let (_, view) = client.get(&serve.url(&format!("/feeds/{feed_id}")));
    assert_eq!(view["data"]["pronunciations"], feed_rules, "the subscription shows its rules");
    let (status, refused) = client.put_rules(
        &serve.url(&format!("/feeds/{feed_id}/pronunciations")),
        json!([{"kind": "say_as", "match": "K8s", "interpret_as": "characters"}, {"kind": "substitute", "match": "K8s", "say": "x"}]),
    );
    assert_eq!(status, 400);
    assert_eq!(refused["message"], "rule 1 (\"K8s\"): rule 0 has the same match");

    // The CLI reads the same rules from the data folder.
    let shown = lector.run(&["pronunciations", "show", "--feed", &feed_id]);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["rules"], feed_rules);
    serve.terminate();
}

#[test]
fn the_cli_sets_and_shows_the_default_rules_and_names_a_bad_rule() {
    let lector = Lector::new();
    let file = lector.dir.path().join("rules.json");
    std::fs::write(&file, r#"{"rules": [{"kind": "ipa", "match": "Lector", "phonemes": "ˈlɛktɚ"}]}"#)
        .unwrap();
    let set = lector.run(&["pronunciations", "set", file.to_str().unwrap()]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let shown = lector.run(&["pronunciations", "show"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["rules"], json!([{"kind": "ipa", "match": "Lector", "phonemes": "ˈlɛktɚ"}]));
    std::fs::write(&file, r#"{"rules": [{"kind": "substitute", "match": "", "say": "x"}]}"#).unwrap();
    let bad = lector.run(&["pronunciations", "set", file.to_str().unwrap()]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("rule 0 (\"\"): match is empty"), "{stderr}");
    let unknown = lector.run(&["pronunciations", "show", "--feed", "0123456789abcdef"]);
    assert!(!unknown.status.success());
}
