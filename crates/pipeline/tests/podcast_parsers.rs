//! Outside parsers read every podcast feed the renderer makes and see what was rendered: npm
//! `podcast-partytime` (the Podcast Index's parser, Podcasting 2.0 aware) and Python's
//! `feedparser`, each run as a process on the rendered file (tests/podcast/partytime.mjs and
//! tests/podcast/feedparser_dump.py). `scripts/tools.sh partytime feedparser` installs them.

mod podcast_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use lector_pipeline::podcast::{Channel, Episode, render};
use podcast_common::{as_read, feeds};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `program args… feed` and returns its JSON output; panics saying how to install the
/// parser when it is missing.
fn run(program: &Path, script: &Path, feed: &Path, install: &str) -> Value {
    assert!(
        program.exists() || program.components().count() == 1,
        "{} is missing: run `scripts/tools.sh {install}`",
        program.display()
    );
    let output =
        Command::new(program).arg(script).arg(feed).env("PARTYTIME_LOG", "silent").output().unwrap_or_else(
            |e| panic!("cannot run {}: {e}; run `scripts/tools.sh {install}`", program.display()),
        );
    assert!(
        output.status.success(),
        "{} {} failed ({}): {}\nrun `scripts/tools.sh {install}` if it is not installed",
        program.display(),
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{} printed no JSON ({e}): {}", script.display(), String::from_utf8_lossy(&output.stdout))
    })
}

fn partytime(feed: &Path) -> Value {
    let dir = root().join("tests/podcast");
    assert!(
        dir.join("node_modules/podcast-partytime/package.json").exists(),
        "podcast-partytime is not installed in tests/podcast: run `scripts/tools.sh partytime`"
    );
    run(Path::new("node"), &dir.join("partytime.mjs"), feed, "partytime")
}

fn feedparser(feed: &Path) -> Value {
    let python = root().join(".tools/venv/bin/python");
    run(&python, &root().join("tests/podcast/feedparser_dump.py"), feed, "feedparser")
}

/// Runs of whitespace as one space: readers take a description for HTML, where they are one.
fn squeezed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a reader sees of an episode's summary: the text, or its clipped start when it was
/// longer than Apple's 4000 bytes.
fn assert_summary(seen: &Value, rendered: Option<&str>, what: &str) {
    match rendered.map(|t| squeezed(&as_read(t))) {
        None => assert!(seen.is_null() || seen == "", "{what}: no summary was rendered, saw {seen}"),
        Some(text) => {
            let seen = squeezed(seen.as_str().unwrap_or_else(|| panic!("{what}: no summary seen")));
            if let Some(stem) = seen.strip_suffix('…') {
                assert!(text.len() > 4000 && text.starts_with(stem.trim_end()), "{what}: {seen:?}");
            } else {
                assert_eq!(seen, text, "{what}");
            }
        }
    }
}

fn compare_channel(seen: &Value, channel: &Channel, parser: &str) {
    assert_eq!(seen["title"], as_read(&channel.title), "{parser}: title");
    assert_eq!(seen["description"], channel.description, "{parser}: description");
    assert_eq!(seen["link"], channel.link, "{parser}: link");
    assert_eq!(seen["language"], channel.language, "{parser}: language");
    assert_eq!(seen["image"], channel.image_url, "{parser}: itunes:image");
    assert_eq!(seen["self"], channel.self_url, "{parser}: atom self link");
    assert_eq!(seen["guid"], channel.guid.to_string(), "{parser}: podcast:guid");
    match &channel.owner {
        Some(owner) => {
            assert_eq!(seen["owner"]["name"], owner.name, "{parser}: owner");
            assert_eq!(seen["owner"]["email"], owner.email, "{parser}: owner");
        }
        None => assert!(seen["owner"].is_null(), "{parser}: an owner was seen: {}", seen["owner"]),
    }
}

/// Text as podcast-partytime reports it: it decodes HTML character references in titles once
/// more after XML has (with the `he` package), so a title that spells out `&amp;` reads `&`.
fn decoded_again(text: &str) -> String {
    let mut out = text.to_owned();
    for (entity, c) in
        [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&apos;", "'"), ("&amp;", "&")]
    {
        out = out.replace(entity, c);
    }
    out
}

fn compare_episode(seen: &Value, episode: &Episode, parser: &str, title: impl Fn(&str) -> String) {
    let what = format!("{parser}, episode {}", episode.guid);
    assert_eq!(seen["title"], title(&as_read(&episode.title)), "{what}: title");
    assert_eq!(seen["guid"], episode.guid, "{what}: guid");
    assert_eq!(seen["link"].as_str(), episode.link.as_deref(), "{what}: link");
    assert_eq!(seen["published"], episode.published.timestamp(), "{what}: pubDate");
    assert_summary(&seen["summary"], episode.summary.as_deref(), &what);
    let chapters = episode
        .chapters_url
        .as_ref()
        .map(|url| serde_json::json!({"url": url, "type": "application/json+chapters"}));
    assert_eq!(seen["chapters"], chapters.unwrap_or(Value::Null), "{what}: podcast:chapters");
}

#[test]
fn podcast_partytime_sees_what_was_rendered() {
    let dir = tempfile::tempdir().unwrap();
    for (name, channel, episodes) in feeds() {
        let path = dir.path().join("feed.xml");
        std::fs::write(&path, render(&channel, &episodes)).unwrap();
        let seen = partytime(&path);
        let parser = format!("podcast-partytime on the {name} feed");
        compare_channel(&seen, &channel, &parser);
        let category = match &channel.category.subcategory {
            Some(sub) => format!("{} > {sub}", channel.category.name),
            None => channel.category.name.clone(),
        };
        assert_eq!(seen["categories"], serde_json::json!([category]), "{parser}: category");
        assert_eq!(seen["explicit"], channel.explicit, "{parser}: explicit");
        assert_eq!(seen["author"], channel.author, "{parser}: author");
        // podcast-partytime reads podcast:locked only when it has an owner attribute (its
        // `supportCheck`), which Lector gives it with the owner's email.
        let locked = if channel.owner.is_some() { Value::Bool(channel.locked) } else { Value::Null };
        assert_eq!(seen["locked"], locked, "{parser}: podcast:locked");
        let items = seen["items"].as_array().expect("items");
        assert_eq!(items.len(), episodes.len(), "{parser}: episodes");
        for (item, episode) in items.iter().zip(&episodes) {
            compare_episode(item, episode, &parser, decoded_again);
            let enclosure = serde_json::json!({
                "url": episode.enclosure.url, "length": episode.enclosure.length, "type": episode.enclosure.mime
            });
            assert_eq!(item["enclosure"], enclosure, "{parser}: enclosure");
            assert_eq!(
                item["duration"],
                episode.duration_seconds.round() as u64,
                "{parser}: itunes:duration"
            );
            let transcripts: Vec<Value> = episode
                .transcripts
                .iter()
                .map(|t| serde_json::json!({"url": t.url, "type": t.mime}))
                .collect();
            assert_eq!(item["transcripts"], Value::Array(transcripts), "{parser}: podcast:transcript");
        }
    }
}

#[test]
fn feedparser_sees_what_was_rendered() {
    let dir = tempfile::tempdir().unwrap();
    for (name, channel, episodes) in feeds() {
        let path = dir.path().join("feed.xml");
        std::fs::write(&path, render(&channel, &episodes)).unwrap();
        let seen = feedparser(&path);
        let parser = format!("feedparser on the {name} feed");
        compare_channel(&seen, &channel, &parser);
        let mut categories = vec![channel.category.name.clone()];
        categories.extend(channel.category.subcategory.clone());
        assert_eq!(seen["categories"], serde_json::json!(categories), "{parser}: categories");
        let items = seen["items"].as_array().expect("items");
        assert_eq!(items.len(), episodes.len(), "{parser}: episodes");
        for (item, episode) in items.iter().zip(&episodes) {
            compare_episode(item, episode, &parser, str::to_owned);
            let enclosures = serde_json::json!([{
                "url": episode.enclosure.url, "length": episode.enclosure.length, "type": episode.enclosure.mime
            }]);
            assert_eq!(item["enclosures"], enclosures, "{parser}: enclosure");
            assert_eq!(
                item["duration"],
                (episode.duration_seconds.round() as u64).to_string(),
                "{parser}: duration"
            );
            // feedparser keeps one dict per unknown namespaced tag: of several transcripts it
            // reports the last.
            let last: Vec<Value> = episode
                .transcripts
                .last()
                .map(|t| serde_json::json!({"url": t.url, "type": t.mime}))
                .into_iter()
                .collect();
            assert_eq!(item["transcripts"], Value::Array(last), "{parser}: podcast:transcript");
        }
    }
}
