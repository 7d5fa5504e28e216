//! The audio: the MP3 with range requests (so players can seek), and the embeddable player.

use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use lector_core::ObjectKey;
use lector_core::ports::ObjectError;

use crate::AppState;
use crate::conversions::load_status;
use crate::error::ApiError;
use crate::extract::{BaseUrl, IdPath};
use crate::views::escape;

/// The player page template (`web/embed.html`): its `{{name}}` placeholders are filled in by
/// [`fill`], the values escaped, and the read-along player's script and style inlined, so the
/// embed is one request and the page and the embed run the very same player.
const EMBED_TEMPLATE: &str = include_str!("../../../web/embed.html");
/// The read-along player (`web/player.js`), also served beside the page.
pub const PLAYER_JS: &str = include_str!("../../../web/player.js");
/// The player's style (`web/player.css`), also served beside the page.
pub const PLAYER_CSS: &str = include_str!("../../../web/player.css");

/// How long a presigned audio address stays valid: long enough for a player to start and seek
/// through an hour of audio.
const PRESIGNED_FOR: std::time::Duration = std::time::Duration::from_secs(3600);

/// A byte range `start..end` (end exclusive) of an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// Why a `Range` cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// The single byte range a `Range` header asks for. `None` means "send the whole object": no
/// header, several ranges, or a form this server does not serve (RFC 9110 lets a server ignore
/// those).
pub fn parse_range(value: Option<&str>, size: u64) -> Result<Option<ByteRange>, Unsatisfiable> {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else { return Ok(None) };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    let range = match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => {
            let Some(n) = parse(last) else { return Ok(None) };
            if n == 0 || size == 0 {
                return Err(Unsatisfiable);
            }
            ByteRange { start: size.saturating_sub(n), end: size }
        }
        // bytes=A-: from A to the end.
        (false, true) => {
            let Some(start) = parse(first) else { return Ok(None) };
            ByteRange { start, end: size }
        }
        (false, false) => {
            let (Some(start), Some(last)) = (parse(first), parse(last)) else { return Ok(None) };
            if last < start {
                return Ok(None);
            }
            ByteRange { start, end: last.saturating_add(1).min(size) }
        }
        (true, true) => return Ok(None),
    };
    if range.start >= size { Err(Unsatisfiable) } else { Ok(Some(range)) }
}

/// `GET /conversions/{id}/audio`: the latest audio, kept while a newer revision is made.
pub async fn audio(
    State(api): State<AppState>,
    IdPath(id): IdPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let status = load_status(&api, &id).await?;
    let (Some(key), Some(revision)) = (status.audio_ref.clone(), status.audio_revision) else {
        return Err(ApiError::not_found(format!(
            "conversion {id} has no audio yet: it is {}",
            status.state.as_str()
        )));
    };
    serve(&api, &id, &key, revision, &headers).await
}

/// `GET /conversions/{id}/audio/r{revision}.mp3`: one revision's audio, at an address of its
/// own (for podcast enclosures and caches). Every completed revision's stays served.
pub async fn revision_audio(
    State(api): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id: lector_core::ConversionId =
        id.parse().map_err(|e: lector_core::id::InvalidConversionId| ApiError::bad_request(e.to_string()))?;
    let revision = file
        .strip_prefix('r')
        .and_then(|f| f.strip_suffix(".mp3"))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            ApiError::bad_request(format!("'{file}' is not a revision's audio: expected r<revision>.mp3"))
        })?;
    let status = load_status(&api, &id).await?;
    if status.audio_revision.is_none_or(|done| revision > done) {
        return Err(ApiError::not_found(format!("conversion {id} has no audio of revision {revision}")));
    }
    let key = if status.audio_revision == Some(revision) {
        status.audio_ref.clone().unwrap_or_else(|| ObjectKey::revision_audio(&id, revision))
    } else {
        ObjectKey::revision_audio(&id, revision)
    };
    serve(&api, &id, &key, revision, &headers).await
}

/// The MP3 at `key`, with range requests; a presigned redirect where the store gives one.
async fn serve(
    api: &AppState,
    id: &lector_core::ConversionId,
    key: &ObjectKey,
    revision: u32,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let object_error = |e: ObjectError| match e {
        ObjectError::NotFound(_) => ApiError::not_found(format!("the audio of {id} is missing from storage")),
        other => ApiError::internal(other.to_string()),
    };
    // Where the store can hand out a direct address (S3), players fetch from there: a Lambda
    // answer is limited to 6 MB and pays for every byte it streams.
    if let Some(url) = api.objects.presigned_get(key, PRESIGNED_FOR).await.map_err(object_error)? {
        let mut response = StatusCode::FOUND.into_response();
        if let Ok(v) = HeaderValue::from_str(url.as_str()) {
            response.headers_mut().insert(header::LOCATION, v);
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
        return Ok(response);
    }
    let meta = api
        .objects
        .head(key)
        .await
        .map_err(object_error)?
        .ok_or_else(|| ApiError::not_found(format!("the audio of {id} is missing from storage")))?;
    let size = meta.size;
    // An audio object never changes once written: its revision names it.
    let etag = format!("\"{id}-r{revision}\"");
    let common = |mut response: Response| {
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400, immutable"));
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        response
    };
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // A Range with If-Range that does not match the current version gets the whole object.
    let if_range_ok = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()).is_none_or(|v| v == etag);
    match parse_range(range_header.filter(|_| if_range_ok), size) {
        Err(Unsatisfiable) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            Ok(common(response))
        }
        Ok(Some(range)) => {
            let bytes = api.objects.get_range(key, range.start, range.end).await.map_err(object_error)?;
            let mut response = (StatusCode::PARTIAL_CONTENT, HttpBody::from(bytes)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", range.start, range.end - 1)) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            Ok(common(response))
        }
        Ok(None) => {
            let bytes = api.objects.get(key).await.map_err(object_error)?;
            Ok(common((StatusCode::OK, HttpBody::from(bytes)).into_response()))
        }
    }
}

/// `H:MM:SS` or `M:SS`.
pub fn clock_duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font:15px system-ui,sans-serif;padding:12px\"><p>{b}</p></body></html>",
        t = escape(title),
        b = escape(body)
    );
    (status, Html(html)).into_response()
}

/// `template` with each `{{name}}` replaced by its value, in one pass: a value is never read
/// again for placeholders (a title may hold `{{player_js}}`). An unknown name is left as it is.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}").and_then(|close| {
            let name = &after[..close];
            values.iter().find(|(n, _)| *n == name).map(|(_, v)| (close, *v))
        }) {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `GET /embed/{id}`: the read-along player in a page of its own, made to be framed by any site.
/// The latest revision's audio is served at its own address, and its text read with that
/// revision in the query, so that caches never pair one revision's text with another's audio.
pub async fn embed(State(api): State<AppState>, base: BaseUrl, IdPath(id): IdPath) -> Response {
    let status = match load_status(&api, &id).await {
        Ok(status) => status,
        Err(e) if e.status == lector_core::response::ResponseStatus::NotFound => {
            return page(StatusCode::NOT_FOUND, "Not found", "There is no such narration.");
        }
        Err(e) => return page(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.message),
    };
    if !status.has_audio() {
        return page(StatusCode::NOT_FOUND, "Not ready", "This narration is not ready yet.");
    }
    let title = status.title.clone().unwrap_or_else(|| "Narrated post".into());
    let audio_url = match status.audio_revision {
        Some(revision) => base.join(&crate::views::revision_audio_path(&id, revision)),
        None => base.join(&format!("/conversions/{id}/audio")),
    };
    let timeline_url = match (&status.timings_ref, status.audio_revision) {
        (Some(_), Some(revision)) => base.join(&format!("/conversions/{id}/timeline.json?r={revision}")),
        (Some(_), None) => base.join(&format!("/conversions/{id}/timeline.json")),
        (None, _) => String::new(),
    };
    let artwork_url =
        status.feed_id.as_ref().map(|f| base.join(&format!("/feeds/{f}/cover.png"))).unwrap_or_default();
    let artist = status.feed_title.clone().unwrap_or_default();
    let duration = clock_duration(status.duration_seconds.unwrap_or_default());
    let escaped = [
        ("title", escape(&title)),
        ("audio_url", escape(&audio_url)),
        ("timeline_url", escape(&timeline_url)),
        ("artwork_url", escape(&artwork_url)),
        ("artist", escape(&artist)),
        ("post_url", escape(status.post_url.as_str())),
        ("duration", escape(&duration)),
    ];
    let mut values: Vec<(&str, &str)> = escaped.iter().map(|(n, v)| (*n, v.as_str())).collect();
    values.extend([("player_css", PLAYER_CSS), ("player_js", PLAYER_JS)]);
    let html = fill(EMBED_TEMPLATE, &values);
    let mut response = Html(html).into_response();
    // Made to be framed by any site; its script and style are inline, its text and artwork
    // come from this API, its audio from wherever the store hands it out.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "frame-ancestors *; default-src 'self' 'unsafe-inline'; media-src *; base-uri 'none'; form-action 'none'",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let r = |v: &str| parse_range(Some(v), 1000);
        assert_eq!(r("bytes=0-99"), Ok(Some(ByteRange { start: 0, end: 100 })));
        assert_eq!(r("bytes=900-"), Ok(Some(ByteRange { start: 900, end: 1000 })));
        assert_eq!(r("bytes=-100"), Ok(Some(ByteRange { start: 900, end: 1000 })));
        assert_eq!(r("bytes=-5000"), Ok(Some(ByteRange { start: 0, end: 1000 })));
        assert_eq!(r("bytes=990-2000"), Ok(Some(ByteRange { start: 990, end: 1000 })));
        assert_eq!(r("bytes=1000-"), Err(Unsatisfiable));
        assert_eq!(r("bytes=-0"), Err(Unsatisfiable));
        assert_eq!(r("bytes=0-1,5-6"), Ok(None), "several ranges: the whole object");
        assert_eq!(r("items=0-1"), Ok(None));
        assert_eq!(r("bytes=5-1"), Ok(None));
        assert_eq!(parse_range(None, 1000), Ok(None));
    }

    #[test]
    fn fill_replaces_each_placeholder_once_and_never_inside_a_value() {
        let filled = fill(
            "<h1>{{title}}</h1><script>{{js}}</script>{{unknown}}",
            &[("title", "a {{js}} title"), ("js", "run()")],
        );
        assert_eq!(filled, "<h1>a {{js}} title</h1><script>run()</script>{{unknown}}");
        assert_eq!(fill("{{open", &[("open", "x")]), "{{open");
    }

    #[test]
    fn the_embed_template_names_only_what_the_handler_fills() {
        let names: Vec<&str> = EMBED_TEMPLATE
            .split("{{")
            .skip(1)
            .filter_map(|rest| rest.split_once("}}").map(|(n, _)| n))
            .collect();
        let filled = [
            "title",
            "audio_url",
            "timeline_url",
            "artwork_url",
            "artist",
            "post_url",
            "duration",
            "player_css",
            "player_js",
        ];
        assert!(names.len() >= filled.len(), "placeholders: {names:?}");
        for name in &names {
            assert!(filled.contains(name), "the embed template names {{{{{name}}}}}, which is never filled");
        }
        for part in [PLAYER_JS, PLAYER_CSS] {
            assert!(!part.contains("{{") && !part.contains("</script") && !part.contains("</style"));
        }
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(clock_duration(59.4), "0:59");
        assert_eq!(clock_duration(185.0), "3:05");
        assert_eq!(clock_duration(3725.0), "1:02:05");
    }
}
