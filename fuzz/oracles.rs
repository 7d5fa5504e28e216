// What each fuzz target checks of one input, shared by the targets (`fuzz_targets/*.rs`) and by
// the regression test that replays every input the fuzzer found (`tests/fuzz_regressions.rs`).
// Every function must return normally for any input: a panic, or an assertion that fails, is a
// finding.

use std::sync::OnceLock;

use lector_pipeline::document::Document;
use serde_json::{Value, json};
use url::Url;

/// The feed reader: any bytes read to a feed or a named error.
pub fn feed(data: &[u8]) {
    let base = Url::parse("https://feeds.test/blog/feed.xml").ok();
    let _ = lector_pipeline::feed::parse_feed(data, base.as_ref(), None);
    let _ = lector_pipeline::feed::parse_feed(data, None, Some("iso-8859-1"));
}

/// The article extractor and the block model of HTML.
pub fn article(data: &[u8]) {
    let html = lector_pipeline::fetch::decode_html(data, None);
    let url = Url::parse("https://blog.test/a/post.html").ok();
    if let Ok(article) = lector_pipeline::article::extract_article(&html, url.as_ref()) {
        assert!(article.words > 0, "an article has words");
    }
    let document = Document::from_html(&html);
    assert_eq!(Document::from_text(&document.to_text()), document, "the text form round-trips");
}

/// Narration and the chunker: every unit one well-formed SSML document within the voice's
/// limits, and the text form of a document read back to the same blocks.
pub fn narration(data: &[u8]) {
    use lector_core::voice::SpeechLimits;
    let text = String::from_utf8_lossy(data);
    let document = Document::from_text(&text);
    assert_eq!(Document::from_text(&document.to_text()), document, "the text form round-trips");
    for limits in [
        SpeechLimits { max_billed_chars: 3_000, max_total_chars: 6_000 },
        SpeechLimits { max_billed_chars: 40, max_total_chars: 120 },
    ] {
        let Ok(speech) = lector_pipeline::speech::prepare(&document, Some("en"), limits) else { continue };
        for chunk in &speech.chunks {
            assert!(chunk.billed_chars <= limits.max_billed_chars, "{limits:?}: {chunk:?}");
        }
        for unit in &speech.units {
            assert!(unit.total_chars() <= limits.max_total_chars, "{limits:?}: {}", unit.ssml);
            assert!(unit.ssml.starts_with("<speak>") && unit.ssml.ends_with("</speak>"), "{}", unit.ssml);
            assert_eq!(unit.ssml.matches("<speak>").count(), 1, "{}", unit.ssml);
        }
    }
}

/// A document for paths and intrinsic functions to work on.
fn sample() -> Value {
    json!({
        "a": {"b": [1, 2.5, "three", null, true, {"c": "d"}], "e": {"f": {"g": 7}}},
        "list": [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}],
        "text": "hello,world",
        "n": -3,
        "empty": {}
    })
}

/// The JSONPath evaluator: parsing, selecting, setting.
pub fn jsonpath(data: &[u8]) {
    use lector_states::path::JsonPath;
    let Ok(text) = std::str::from_utf8(data) else { return };
    let doc = sample();
    for parsed in [JsonPath::parse(text), JsonPath::parse_reference(text)] {
        let Ok(path) = parsed else { continue };
        let _ = path.eval(&doc);
        let _ = path.select(&doc);
        let _ = path.exists(&doc);
        let _ = path.normalized();
        let mut target = doc.clone();
        let _ = path.set(&mut target, json!({"set": true}));
    }
}

/// The intrinsic functions: any call text parsed and evaluated, or refused by name.
pub fn intrinsic(data: &[u8]) {
    use lector_states::intrinsic::Call;
    use lector_states::template::Scope;
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(call) = Call::parse(text) else { return };
    let input = sample();
    let context = |_| json!({"Execution": {"Id": "arn:aws:states:us-east-1:1:execution:m:e"}});
    let mut vars = serde_json::Map::new();
    vars.insert("v".into(), json!([1, 2, 3]));
    let scope = Scope::new(&input, &context, &vars);
    let _ = call.eval(&scope);
}

/// The HTTP API's request bodies: whatever a client sends, the answer is an envelope with a
/// named status, and bad input is never an internal error.
pub fn api_body(data: &[u8]) {
    use tower::ServiceExt;
    let (rt, app) = api();
    for path in ["/conversions", "/conversions/batch", "/feeds/preview"] {
        // The preview would fetch any public address a body names: only bodies it refuses go on.
        if path == "/feeds/preview" && preview_would_fetch(data) {
            continue;
        }
        let request = axum::http::Request::builder()
            .method("POST")
            .uri(path)
            .header("host", "lector.test")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(data.to_vec()))
            .expect("a request");
        let (status, body) = rt.block_on(async {
            let response = app.clone().oneshot(request).await.expect("the router answers");
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("a body");
            (status, body)
        });
        let envelope: Value = serde_json::from_slice(&body).expect("the answer is JSON");
        let named = envelope["status"].as_str().unwrap_or_default();
        assert!(
            ["success", "accepted", "skipped", "badRequest", "conflict", "notFound"].contains(&named),
            "{path}: {status} {envelope}"
        );
        assert!(status < 500, "{path}: {status} {envelope}");
        assert!(envelope["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {envelope}");
    }
}

/// Whether a preview body names an address the preview would go out and fetch.
fn preview_would_fetch(data: &[u8]) -> bool {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(data) else { return false };
    body.get("url").and_then(Value::as_str).and_then(|u| Url::parse(u.trim()).ok()).is_some()
}

/// The API on the local adapters in a folder of its own, built once per process.
fn api() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static API: OnceLock<(tokio::runtime::Runtime, axum::Router)> = OnceLock::new();
    API.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lector-fuzz-api-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for the API's data");
        let db = lector_local::db::Db::open(dir.join("lector.sqlite")).expect("a database");
        let fetcher = lector_pipeline::fetch::Fetcher::new(lector_pipeline::fetch::FetchPolicy::default())
            .expect("a fetcher");
        let api = lector_api::Api::new(
            lector_api::ApiPorts {
                events: std::sync::Arc::new(lector_local::event_store::SqliteEventStore::new(db.clone())),
                objects: std::sync::Arc::new(lector_local::objects::FolderObjectStore::new(
                    dir.join("objects"),
                )),
                voice: std::sync::Arc::new(OneVoice),
                fetcher: std::sync::Arc::new(fetcher),
                clock: std::sync::Arc::new(lector_local::clock::SystemClock),
                index: std::sync::Arc::new(lector_local::index::SqliteConversionIndex::new(db.clone())),
                feeds: std::sync::Arc::new(lector_local::feed_index::SqliteFeedIndex::new(db)),
                polls: std::sync::Arc::new(NoPolls),
            },
            lector_api::ApiSettings {
                token: None,
                public_url: None,
                default_voice: lector_core::VoiceId::new("en-us"),
                default_engine: lector_core::VoiceEngine::Espeak,
                engines: vec![lector_core::VoiceEngine::Espeak],
                preview_measure_limit: 0,
                own_feeds: vec![],
                podcast_owner: None,
                websub: None,
            },
        );
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        (rt, lector_api::router(api))
    })
}

/// Polls on demand refused: no polling workflow runs while fuzzing.
struct NoPolls;

#[async_trait::async_trait]
impl lector_core::ports::FeedPolls for NoPolls {
    async fn poll_now(&self, _: &[lector_core::FeedId]) -> Result<String, lector_core::ports::WorkflowError> {
        Err(lector_core::ports::WorkflowError::Failed("no polling workflow while fuzzing".into()))
    }
}

/// One voice, and no synthesis: the bodies are what is tested.
struct OneVoice;

#[async_trait::async_trait]
impl lector_core::ports::Voice for OneVoice {
    async fn voices(&self) -> Result<Vec<lector_core::voice::VoiceInfo>, lector_core::ports::VoiceError> {
        Ok(vec![lector_core::voice::VoiceInfo {
            id: lector_core::VoiceId::new("en-us"),
            name: "English".into(),
            language: "en-US".into(),
            gender: None,
            engines: vec![lector_core::VoiceEngine::Espeak],
            licence: None,
        }])
    }

    async fn synthesize(
        &self,
        _text: &str,
        _spec: &lector_core::ports::VoiceSpec,
    ) -> Result<bytes::Bytes, lector_core::ports::VoiceError> {
        Err(lector_core::ports::VoiceError::Unavailable("no synthesis while fuzzing".into()))
    }
}
