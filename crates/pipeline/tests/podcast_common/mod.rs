//! Podcast feeds the podcast tests render: a complete show, one without an owner, and one whose
//! texts try every way to break XML.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use lector_pipeline::podcast::{
    Category, Channel, Enclosure, Episode, Owner, ShowType, TranscriptLink, podcast_guid, render,
};

pub const BASE: &str = "https://lector.example";

pub fn channel(owner: bool) -> Channel {
    let self_url = format!("{BASE}/feeds/0123456789abcdef/podcast.xml");
    Channel {
        title: "Example Blog (narrated)".into(),
        description: "Posts of Example Blog, read aloud.".into(),
        language: "en-us".into(),
        link: "https://blog.example.com/".into(),
        guid: podcast_guid(&self_url),
        self_url,
        image_url: format!("{BASE}/feeds/0123456789abcdef/cover.png"),
        category: Category { name: "Society & Culture".into(), subcategory: Some("Documentary".into()) },
        explicit: false,
        author: "Example Blog".into(),
        owner: owner.then(|| Owner { name: "Ann Example".into(), email: "ann@example.com".into() }),
        show_type: ShowType::Episodic,
        locked: true,
        generator: Some("Lector".into()),
    }
}

pub fn date(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, day, 9, 30, 0).single().expect("a date")
}

/// An episode `n` with every tag: transcripts (VTT and JSON) and chapters.
pub fn episode(n: u32) -> Episode {
    let id = format!("{n:016x}");
    Episode {
        guid: format!("lector:{id}"),
        title: format!("Post number {n}"),
        link: Some(format!("https://blog.example.com/posts/{n}")),
        published: date(n),
        summary: Some(format!("What post {n} is about, in a sentence or two.")),
        author: Some("Ann Example".into()),
        enclosure: Enclosure {
            url: format!("{BASE}/conversions/{id}/audio?rev=1"),
            length: 100_000 + u64::from(n) * 7,
            mime: "audio/mpeg".into(),
        },
        duration_seconds: 61.6 + f64::from(n),
        transcripts: vec![
            TranscriptLink::vtt(format!("{BASE}/conversions/{id}/transcript.vtt")),
            TranscriptLink::json(format!("{BASE}/conversions/{id}/transcript.json")),
        ],
        chapters_url: Some(format!("{BASE}/conversions/{id}/chapters.json")),
    }
}

/// An episode with only what every episode has: no summary, author, transcript or chapters.
pub fn bare_episode(n: u32) -> Episode {
    Episode { summary: None, author: None, transcripts: vec![], chapters_url: None, ..episode(n) }
}

/// Titles and summaries that would break a naive writer: markup, a CDATA end, entities written
/// out, control characters, and a summary far past Apple's 4000 bytes. (Readers take an RSS
/// description for HTML, so the summary, plain text, holds no tags: `a < b` and `]]>` are text
/// to an HTML reader too.)
pub fn hostile_episode(n: u32) -> Episode {
    Episode {
        title: "</title><script>alert(1)</script> ]]> &amp; \u{7}bell \"quoted\" 'single' — naïve 🎧".into(),
        summary: Some(format!(
            "Tom & Jerry ]]> a < b, \"quoted\" \u{1b}{}",
            " long sentence goes here.".repeat(300)
        )),
        author: Some("A & B <authors>".into()),
        ..episode(n)
    }
}

/// What a reader should see of a text: the renderer drops control characters (other than tab
/// and line breaks) and surrounding space.
pub fn as_read(text: &str) -> String {
    text.trim().chars().filter(|c| matches!(c, '\t' | '\n' | '\r') || !c.is_control()).collect()
}

/// The feeds the podcast tests check, named.
pub fn feeds() -> Vec<(&'static str, Channel, Vec<Episode>)> {
    vec![
        ("complete", channel(true), vec![episode(3), episode(2), episode(1)]),
        ("no owner, bare episodes", channel(false), vec![bare_episode(5), bare_episode(4)]),
        ("hostile text", channel(true), vec![hostile_episode(7), episode(6)]),
        ("no episodes yet", channel(true), vec![]),
    ]
}

pub fn rendered(channel: &Channel, episodes: &[Episode]) -> String {
    render(channel, episodes)
}
