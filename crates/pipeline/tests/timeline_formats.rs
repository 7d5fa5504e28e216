//! The transcript and chapter files a timeline writes, checked against their specifications:
//! WebVTT read back by a parser written here from W3C WebVTT 1 (file header, cue blocks, cue
//! timings, cue text escaping), SRT by its cue form, and the Podcasting 2.0 JSON transcript and
//! JSON chapters validated against JSON Schemas written from the podcast namespace's
//! transcripts.md and jsonChapters.md; every time round-trips to the millisecond.

use lector_pipeline::timeline::{BlockKind, Chapter, Segment, Timeline, TimelineBlock};
use serde_json::{Value, json};

/// A timeline as the stitching step would build it: sentences of several blocks, their
/// durations in whole MPEG frames (1152 samples at 22,050 Hz), a pause between blocks, texts
/// that need escaping, and an audio past an hour so that hours show.
fn timeline() -> Timeline {
    let frame = 1152.0 / 22_050.0;
    let blocks: Vec<(BlockKind, Vec<&str>)> = vec![
        (BlockKind::Heading, vec!["Why a --> arrow & <tags> matter"]),
        (
            BlockKind::Paragraph,
            vec![
                "First sentence.",
                "Second one, with \"quotes\" and 'apostrophes'.",
                "Line\nbreaks\n\nand blank lines.",
            ],
        ),
        (BlockKind::Heading, vec!["Part two:", "in two sentences"]),
        (BlockKind::ListItem, vec!["An item: 3 < 4 && 5 > 4."]),
        (BlockKind::Quote, vec!["Ünïcödé — “curly” 🎧 text."]),
        (BlockKind::Heading, vec!["The end"]),
        (BlockKind::Paragraph, vec!["Last words."]),
    ];
    let mut t = 0.25;
    let mut segments = Vec::new();
    let mut timeline_blocks = Vec::new();
    for (b, (kind, sentences)) in blocks.into_iter().enumerate() {
        timeline_blocks.push(TimelineBlock { kind, level: (kind == BlockKind::Heading).then_some(2) });
        for (i, text) in sentences.into_iter().enumerate() {
            let frames = 40 + 17 * ((b * 3 + i) % 7);
            let end = t + frames as f64 * frame;
            segments.push(Segment { start: t, end, text: text.into(), block: b as u32 });
            t = end + 6.0 * frame;
        }
        // A long pause after the quote puts the rest past an hour.
        t += if kind == BlockKind::Quote { 3600.0 } else { 12.0 * frame };
    }
    let mut timeline = Timeline {
        duration_seconds: t,
        language: Some("en".into()),
        segments,
        blocks: timeline_blocks,
        chapters: vec![],
    };
    timeline.chapters = timeline.chapters_from_headings(Some("The post's title"));
    timeline.validate().expect("a valid timeline");
    timeline
}

fn millis(seconds: f64) -> u64 {
    (seconds * 1000.0).round() as u64
}

/// A WebVTT timestamp (`[hh:]mm:ss.ttt`, hours two or more digits, minutes and seconds below
/// 60, exactly three fraction digits) in milliseconds.
fn vtt_timestamp(s: &str) -> Result<u64, String> {
    let (clock, fraction) = s.split_once('.').ok_or(format!("no '.' in {s:?}"))?;
    if fraction.len() != 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the fraction of {s:?} is not three digits"));
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let (h, m, sec) = match parts.as_slice() {
        [m, s] => ("0", *m, *s),
        [h, m, s] if h.len() >= 2 => (*h, *m, *s),
        _ => return Err(format!("{s:?} is not [hh:]mm:ss")),
    };
    let number = |p: &str| p.parse::<u64>().map_err(|_| format!("{p:?} in {s:?}"));
    let (h, m, sec) = (number(h)?, number(m)?, number(sec)?);
    if m > 59 || sec > 59 {
        return Err(format!("minutes or seconds past 59 in {s:?}"));
    }
    Ok(((h * 60 + m) * 60 + sec) * 1000 + number(fraction)?)
}

#[derive(Debug)]
struct Cue {
    id: Option<String>,
    start: u64,
    end: u64,
    text: String,
}

/// A WebVTT file's cues, parsed as W3C WebVTT 1 describes the file: the `WEBVTT` signature
/// line, blocks separated by blank lines, each cue an optional identifier line (without
/// `-->`), a timing line `start --> end`, then one or more payload lines none of which is
/// blank or holds `-->`. Start times must not decrease and each end must follow its start.
fn parse_vtt(text: &str) -> Result<Vec<Cue>, String> {
    if text.contains('\r') || text.contains('\0') {
        return Err("a CR or NUL in the file".into());
    }
    let mut blocks = text.split("\n\n");
    let header = blocks.next().ok_or("empty file")?;
    let signature = header.lines().next().unwrap_or_default();
    if !(signature == "WEBVTT" || signature.starts_with("WEBVTT ") || signature.starts_with("WEBVTT\t")) {
        return Err(format!("the file starts with {signature:?}"));
    }
    let mut cues: Vec<Cue> = Vec::new();
    for block in blocks.filter(|b| !b.trim().is_empty()) {
        let mut lines = block.lines();
        let first = lines.next().ok_or("an empty block")?;
        let (id, timing) = if first.contains("-->") {
            (None, first)
        } else {
            (Some(first.to_owned()), lines.next().ok_or(format!("cue {first:?} has no timing line"))?)
        };
        let (start, rest) = timing.split_once(" --> ").ok_or(format!("bad timing line {timing:?}"))?;
        let end = rest.split([' ', '\t']).next().unwrap_or_default();
        let (start, end) = (vtt_timestamp(start)?, vtt_timestamp(end)?);
        if end <= start {
            return Err(format!("cue {id:?} ends at {end} ms, not after its start {start} ms"));
        }
        if let Some(previous) = cues.last()
            && start < previous.start
        {
            return Err(format!("cue {id:?} starts before the cue before it"));
        }
        let payload: Vec<&str> = lines.collect();
        if payload.is_empty() {
            return Err(format!("cue {id:?} has no text"));
        }
        for line in &payload {
            if line.contains("-->") {
                return Err(format!("cue {id:?} holds '-->' in its text"));
            }
            // Cue text: `<` only opens a tag and `&` only a character reference; Lector writes
            // no tags, so every `<` must have been escaped, every `&` start a reference.
            if line.contains('<') {
                return Err(format!("an unescaped '<' in {line:?}"));
            }
            for (i, _) in line.match_indices('&') {
                let rest = &line[i..];
                if !["&amp;", "&lt;", "&gt;"].iter().any(|r| rest.starts_with(r)) {
                    return Err(format!("a bare '&' in {line:?}"));
                }
            }
        }
        cues.push(Cue { id, start, end, text: payload.join("\n") });
    }
    Ok(cues)
}

/// Cue text unescaped, as a WebVTT reader shows it.
fn vtt_unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The segment's text as every format carries it: one line, whitespace runs as one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn webvtt_follows_the_specification_and_round_trips_every_time() {
    let timeline = timeline();
    let vtt = timeline.to_webvtt().unwrap();
    let cues = parse_vtt(&vtt).unwrap_or_else(|e| panic!("{e}\n{vtt}"));
    assert_eq!(cues.len(), timeline.segments.len());
    for (i, (cue, segment)) in cues.iter().zip(&timeline.segments).enumerate() {
        assert_eq!(cue.id.as_deref(), Some((i + 1).to_string().as_str()));
        assert_eq!((cue.start, cue.end), (millis(segment.start), millis(segment.end)), "cue {}", i + 1);
        assert_eq!(vtt_unescape(&cue.text), one_line(&segment.text));
    }
    assert!(vtt.contains("\n01:0"), "times past an hour carry their hours: {vtt}");
    assert!(vtt.contains("Why a --&gt; arrow &amp; &lt;tags&gt; matter"), "{vtt}");
}

#[test]
fn the_vtt_parser_of_this_test_refuses_what_the_specification_refuses() {
    let good = "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\nHi\n";
    assert!(parse_vtt(good).is_ok());
    for bad in [
        "WEBVT\n\n1\n00:00:01.000 --> 00:00:02.000\nHi\n",
        "WEBVTT\n\n1\n00:00:01.00 --> 00:00:02.000\nHi\n",
        "WEBVTT\n\n1\n00:00:02.000 --> 00:00:01.000\nHi\n",
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\na --> b\n",
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\na < b\n",
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\na & b\n",
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\n",
        "WEBVTT\n\n1\n00:00:03.000 --> 00:00:04.000\nA\n\n2\n00:00:01.000 --> 00:00:02.000\nB\n",
        "WEBVTT\n\n1\n00:61:01.000 --> 00:62:02.000\nHi\n",
    ] {
        assert!(parse_vtt(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn srt_counts_from_one_and_round_trips_every_time() {
    let timeline = timeline();
    let srt = timeline.to_srt().unwrap();
    assert!(!srt.contains('\r'));
    let blocks: Vec<&str> = srt.trim_end().split("\n\n").collect();
    assert_eq!(blocks.len(), timeline.segments.len());
    for (i, (block, segment)) in blocks.iter().zip(&timeline.segments).enumerate() {
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines.len(), 3, "counter, timing and one line of text: {block:?}");
        assert_eq!(lines[0], (i + 1).to_string());
        let (start, end) = lines[1].split_once(" --> ").expect("a timing line");
        let srt_time = |s: &str| vtt_timestamp(&s.replacen(',', ".", 1)).expect("HH:MM:SS,mmm");
        assert!(start.contains(',') && end.contains(','), "{}", lines[1]);
        assert_eq!((srt_time(start), srt_time(end)), (millis(segment.start), millis(segment.end)));
        assert_eq!(lines[2], one_line(&segment.text));
    }
}

/// The Podcasting 2.0 JSON transcript (transcripts.md, "JSON"): `version` and `segments`, each
/// segment with `startTime`, optional `endTime`, `body` and optional `speaker`.
fn transcript_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["version", "segments"],
        "properties": {
            "version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"},
            "segments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["startTime", "body"],
                    "properties": {
                        "speaker": {"type": "string"},
                        "startTime": {"type": "number", "minimum": 0},
                        "endTime": {"type": "number", "minimum": 0},
                        "body": {"type": "string"}
                    },
                    "additionalProperties": false
                }
            }
        },
        "additionalProperties": false
    })
}

/// The JSON chapters format 1.2 (jsonChapters.md): required `version` (string) and `chapters`
/// (array); a chapter requires `startTime` (float seconds), with optional `title`, `img`,
/// `url`, `toc`, `endTime` and `location` ({name, geo} required).
fn chapters_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["version", "chapters"],
        "properties": {
            "version": {"type": "string"},
            "author": {"type": "string"},
            "title": {"type": "string"},
            "podcastName": {"type": "string"},
            "description": {"type": "string"},
            "fileName": {"type": "string"},
            "waypoints": {"type": "boolean"},
            "chapters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["startTime"],
                    "properties": {
                        "startTime": {"type": "number", "minimum": 0},
                        "title": {"type": "string"},
                        "img": {"type": "string"},
                        "url": {"type": "string"},
                        "toc": {"type": "boolean"},
                        "endTime": {"type": "number", "minimum": 0},
                        "location": {
                            "type": "object",
                            "required": ["name", "geo"],
                            "properties": {"name": {"type": "string"}, "geo": {"type": "string"}, "osm": {"type": "string"}}
                        }
                    },
                    "additionalProperties": false
                }
            }
        },
        "additionalProperties": false
    })
}

fn assert_valid(schema: &Value, instance: &Value) {
    let validator = jsonschema::draft202012::new(schema).expect("a valid schema");
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{instance:#}");
}

#[test]
fn the_schemas_of_this_test_hold_the_specifications_examples_and_refuse_others() {
    // The snippets of transcripts.md and jsonChapters.md.
    let transcript = json!({"version": "1.0.0", "segments": [
        {"speaker": "Darth Vader", "startTime": 0.5, "endTime": 0.75, "body": "I"},
        {"speaker": "Luke", "startTime": 2.75, "endTime": 3.0, "body": "Nooooo"}
    ]});
    assert_valid(&transcript_schema(), &transcript);
    let chapters = json!({"version": "1.2.0", "author": "John Doe", "chapters": [
        {"startTime": 0, "title": "Intro"},
        {"startTime": 4826, "img": "https://example.com/images/parisfrance.jpg", "toc": false,
         "location": {"name": "Eiffel Tower, Paris", "geo": "geo:42.3417649,-70.9661596"}}
    ]});
    assert_valid(&chapters_schema(), &chapters);
    let strict =
        |schema: &Value, instance: Value| jsonschema::draft202012::new(schema).unwrap().is_valid(&instance);
    assert!(!strict(
        &transcript_schema(),
        json!({"version": "1.0.0", "segments": [{"start": 0, "body": "x"}]})
    ));
    assert!(!strict(&chapters_schema(), json!({"version": "1.2.0", "chapters": [{"title": "no start"}]})));
    assert!(!strict(&chapters_schema(), json!({"chapters": []})));
}

#[test]
fn the_json_transcript_follows_podcasting_2_0_and_round_trips_every_time() {
    let timeline = timeline();
    let json: Value = serde_json::from_str(&timeline.to_json_transcript().unwrap()).unwrap();
    assert_valid(&transcript_schema(), &json);
    assert_eq!(json["version"], "1.0.0");
    let segments = json["segments"].as_array().unwrap();
    assert_eq!(segments.len(), timeline.segments.len());
    for (seen, segment) in segments.iter().zip(&timeline.segments) {
        assert_eq!(millis(seen["startTime"].as_f64().unwrap()), millis(segment.start));
        assert_eq!(millis(seen["endTime"].as_f64().unwrap()), millis(segment.end));
        assert_eq!(seen["body"], one_line(&segment.text));
    }
}

#[test]
fn json_chapters_follow_podcasting_2_0_and_come_from_the_headings() {
    let timeline = timeline();
    let json: Value = serde_json::from_str(&timeline.to_json_chapters().unwrap()).unwrap();
    assert_valid(&chapters_schema(), &json);
    assert_eq!(json["version"], "1.2.0");
    let titles: Vec<&str> =
        json["chapters"].as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap()).collect();
    // The first heading opens the audio; a heading read as two sentences is one chapter.
    assert_eq!(titles, ["Why a --> arrow & <tags> matter", "Part two: in two sentences", "The end"]);
    let starts: Vec<u64> = json["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| millis(c["startTime"].as_f64().unwrap()))
        .collect();
    let heading_starts: Vec<u64> = [0, 4, 8].iter().map(|&i| millis(timeline.segments[i].start)).collect();
    assert_eq!(starts, [0, heading_starts[1], heading_starts[2]], "the first chapter starts at 0");
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "ascending: {starts:?}");
}

#[test]
fn chapters_start_with_the_post_title_when_the_first_heading_comes_later_and_are_none_without_headings() {
    let paragraph = TimelineBlock { kind: BlockKind::Paragraph, level: None };
    let heading = TimelineBlock { kind: BlockKind::Heading, level: Some(2) };
    let segments = vec![
        Segment { start: 0.2, end: 1.0, text: "Intro.".into(), block: 0 },
        Segment { start: 1.3, end: 2.0, text: "Heading".into(), block: 1 },
        Segment { start: 2.2, end: 3.0, text: "Body.".into(), block: 2 },
    ];
    let mut t = Timeline {
        duration_seconds: 3.5,
        language: None,
        segments,
        blocks: vec![paragraph, heading, paragraph],
        chapters: vec![],
    };
    assert_eq!(
        t.chapters_from_headings(Some("  My post  ")),
        [Chapter { start: 0.0, title: "My post".into() }, Chapter { start: 1.3, title: "Heading".into() },]
    );
    assert_eq!(t.chapters_from_headings(None)[0].title, "Introduction");
    t.blocks = vec![paragraph, paragraph, paragraph];
    assert_eq!(t.chapters_from_headings(Some("My post")), []);
    t.chapters = vec![];
    let json: Value = serde_json::from_str(&t.to_json_chapters().unwrap()).unwrap();
    assert_eq!(json, json!({"version": "1.2.0", "chapters": []}));
}

#[test]
fn segment_at_agrees_with_every_cue_of_the_vtt() {
    let timeline = timeline();
    let cues = parse_vtt(&timeline.to_webvtt().unwrap()).unwrap();
    for (i, cue) in cues.iter().enumerate() {
        let middle = (cue.start + cue.end) as f64 / 2000.0;
        assert_eq!(timeline.segment_at(middle), Some(i));
        assert_eq!(timeline.segment_at(cue.start as f64 / 1000.0), Some(i));
    }
    let last = cues.last().unwrap();
    assert_eq!(timeline.segment_at(last.end as f64 / 1000.0 + 0.001), None);
}
