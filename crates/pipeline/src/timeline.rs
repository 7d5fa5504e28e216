//! The timing of a conversion's audio: when each spoken sentence starts and ends, which block of
//! the post it belongs to, and the chapters its headings give; with the writers of the files
//! podcast apps and players read from it (WebVTT, SRT, the Podcasting 2.0 JSON transcript and
//! JSON chapters).
//!
//! A timeline is built from the synthesis itself (the frames of each sentence's audio), never
//! estimated from text, and stored as JSON beside the audio. Times are seconds; every writer
//! rounds them to the millisecond, the precision of the formats.

use serde::{Deserialize, Serialize};

/// The MIME type of a WebVTT transcript.
pub const VTT_MIME: &str = "text/vtt";
/// The MIME type of an SRT transcript (as the Podcasting 2.0 `podcast:transcript` tag names it).
pub const SRT_MIME: &str = "application/x-subrip";
/// The MIME type of a Podcasting 2.0 JSON transcript.
pub const JSON_TRANSCRIPT_MIME: &str = "application/json";
/// The MIME type of a Podcasting 2.0 JSON chapters file.
pub const CHAPTERS_MIME: &str = "application/json+chapters";
/// The version of the JSON transcript format written.
pub const JSON_TRANSCRIPT_VERSION: &str = "1.0.0";
/// The version of the JSON chapters format written.
pub const JSON_CHAPTERS_VERSION: &str = "1.2.0";

/// The timing of one conversion's final audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub duration_seconds: f64,
    /// BCP 47 language of the spoken text, when known.
    pub language: Option<String>,
    /// Every spoken sentence, in order.
    pub segments: Vec<Segment>,
    /// The post's blocks the segments belong to: `Segment::block` indexes this list.
    pub blocks: Vec<TimelineBlock>,
    /// Chapters, from the post's headings; empty for a post without headings.
    pub chapters: Vec<Chapter>,
}

/// One spoken sentence: `[start, end)` in seconds of the final audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// The index of its block in [`Timeline::blocks`].
    pub block: u32,
}

/// A block of the post: what kind of text a run of segments is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineBlock {
    pub kind: BlockKind,
    /// The heading level (1 to 6), for headings.
    pub level: Option<u8>,
}

/// The kinds of blocks that are read aloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    Heading,
    Paragraph,
    ListItem,
    Quote,
}

/// A chapter: where it starts, in seconds, and its title.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chapter {
    pub start: f64,
    pub title: String,
}

/// Why a timeline cannot be written: each names the first offending segment or chapter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimelineError {
    /// A time is NaN, infinite or negative.
    #[error("{what} is not a time in seconds: {value}")]
    BadTime { what: String, value: f64 },
    /// A segment ends where it starts, or before (at millisecond precision).
    #[error("segment {index} ends at {end}s, not after its start at {start}s")]
    EmptyInterval { index: usize, start: f64, end: f64 },
    /// A segment starts before the previous one ends.
    #[error("segment {index} starts at {start}s, before segment {} ends at {previous_end}s", index - 1)]
    Overlap { index: usize, start: f64, previous_end: f64 },
    /// A segment ends after the audio does.
    #[error("segment {index} ends at {end}s, after the audio's {duration}s")]
    PastTheEnd { index: usize, end: f64, duration: f64 },
    /// A segment has no text to show.
    #[error("segment {index} has no text")]
    EmptyText { index: usize },
    /// A segment names a block the timeline does not have.
    #[error("segment {index} belongs to block {block}, but the timeline has {blocks} blocks")]
    UnknownBlock { index: usize, block: u32, blocks: usize },
    /// Chapters are not in ascending order of start, or start after the audio ends.
    #[error("chapter {index} starts at {start}s, out of order or past the audio's end")]
    ChapterOutOfPlace { index: usize, start: f64 },
    /// A chapter has no title.
    #[error("chapter {index} has no title")]
    UntitledChapter { index: usize },
    /// The stored JSON is not a timeline.
    #[error("not a timeline: {0}")]
    Json(String),
}

/// Milliseconds of a time the timeline was validated to hold (finite, not negative).
fn millis(seconds: f64) -> u64 {
    (seconds * 1000.0).round() as u64
}

/// A time rounded to the millisecond, in seconds (for the JSON formats).
fn rounded(seconds: f64) -> f64 {
    millis(seconds) as f64 / 1000.0
}

/// `HH:MM:SS` then `sep` and milliseconds: WebVTT uses `.`, SRT `,`.
fn clock(seconds: f64, sep: char) -> String {
    let ms = millis(seconds);
    let (h, m, s, f) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{sep}{f:03}")
}

/// A segment's text on one line: control characters and line breaks become spaces, runs of
/// whitespace one space, no space at either end. (A blank line would end a cue early.)
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Text escaped for a WebVTT cue: `&`, `<` and `>` as character references (WebVTT 1,
/// "WebVTT cue text"). With `>` escaped, the string `-->` can never appear in a cue.
fn vtt_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Serialize)]
struct JsonTranscript<'a> {
    version: &'a str,
    segments: Vec<JsonSegment>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSegment {
    start_time: f64,
    end_time: f64,
    body: String,
}

#[derive(Serialize)]
struct JsonChapters<'a> {
    version: &'a str,
    chapters: Vec<JsonChapter>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonChapter {
    start_time: f64,
    title: String,
}

impl Timeline {
    /// A stored timeline, checked: the JSON must hold a timeline that [`Timeline::validate`]
    /// accepts.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TimelineError> {
        let timeline: Timeline =
            serde_json::from_slice(bytes).map_err(|e| TimelineError::Json(e.to_string()))?;
        timeline.validate()?;
        Ok(timeline)
    }

    /// The timeline as stored beside the audio.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and vectors always serializes; non-finite numbers become
        // `null`, which `from_json` then refuses.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks what every writer relies on: finite times, segments in order and not
    /// overlapping, each at least a millisecond long and within the audio, each with text and
    /// a known block; chapters in order, within the audio and titled.
    pub fn validate(&self) -> Result<(), TimelineError> {
        let time = |what: String, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(TimelineError::BadTime { what, value })
            }
        };
        time("the duration".into(), self.duration_seconds)?;
        let duration = millis(self.duration_seconds);
        let mut previous_end = 0;
        for (index, s) in self.segments.iter().enumerate() {
            time(format!("the start of segment {index}"), s.start)?;
            time(format!("the end of segment {index}"), s.end)?;
            let (start, end) = (millis(s.start), millis(s.end));
            if end <= start {
                return Err(TimelineError::EmptyInterval { index, start: s.start, end: s.end });
            }
            if index > 0 && start < previous_end {
                return Err(TimelineError::Overlap {
                    index,
                    start: s.start,
                    previous_end: self.segments[index - 1].end,
                });
            }
            if end > duration {
                return Err(TimelineError::PastTheEnd { index, end: s.end, duration: self.duration_seconds });
            }
            if one_line(&s.text).is_empty() {
                return Err(TimelineError::EmptyText { index });
            }
            if s.block as usize >= self.blocks.len() {
                return Err(TimelineError::UnknownBlock { index, block: s.block, blocks: self.blocks.len() });
            }
            previous_end = end;
        }
        let mut previous_start = 0;
        for (index, c) in self.chapters.iter().enumerate() {
            time(format!("the start of chapter {index}"), c.start)?;
            let start = millis(c.start);
            if start < previous_start || start > duration {
                return Err(TimelineError::ChapterOutOfPlace { index, start: c.start });
            }
            if one_line(&c.title).is_empty() {
                return Err(TimelineError::UntitledChapter { index });
            }
            previous_start = start;
        }
        Ok(())
    }

    /// The chapters the post's headings give: one per heading block, starting with its first
    /// segment and titled with its text. When the first heading is not where the audio starts,
    /// a first chapter at 0 carries `post_title` (or "Introduction"), so that chapters cover
    /// the whole audio; a heading that opens the audio starts at 0 itself. A post without
    /// headings has no chapters at all.
    pub fn chapters_from_headings(&self, post_title: Option<&str>) -> Vec<Chapter> {
        let mut chapters: Vec<Chapter> = Vec::new();
        let mut current: Option<u32> = None;
        for (i, segment) in self.segments.iter().enumerate() {
            let is_heading =
                self.blocks.get(segment.block as usize).is_some_and(|b| b.kind == BlockKind::Heading);
            if !is_heading {
                current = None;
                continue;
            }
            let text = one_line(&segment.text);
            if current == Some(segment.block) {
                // A heading read as more than one sentence: one chapter, the whole heading.
                if let Some(last) = chapters.last_mut() {
                    last.title.push(' ');
                    last.title.push_str(&text);
                }
                continue;
            }
            current = Some(segment.block);
            if chapters.is_empty() && i > 0 {
                let title = post_title.map(one_line).filter(|t| !t.is_empty());
                chapters.push(Chapter { start: 0.0, title: title.unwrap_or_else(|| "Introduction".into()) });
            }
            let start = if i == 0 { 0.0 } else { segment.start };
            chapters.push(Chapter { start, title: text });
        }
        chapters
    }

    /// The index of the segment being spoken at `t` seconds: the one whose `[start, end)` holds
    /// `t`; `None` in the pauses between sentences, before the first and after the last. Times
    /// are compared to the millisecond, the precision of the written files, so that a player
    /// reading those agrees with this.
    pub fn segment_at(&self, t: f64) -> Option<usize> {
        if !t.is_finite() || t < 0.0 {
            return None;
        }
        let t = millis(t);
        // Segments are ordered and do not overlap: the candidate is the last one starting at or
        // before `t`.
        let after = self.segments.partition_point(|s| millis(s.start) <= t);
        let index = after.checked_sub(1)?;
        (t < millis(self.segments[index].end)).then_some(index)
    }

    /// A WebVTT file (W3C WebVTT 1): the `WEBVTT` header, then one cue per segment, numbered
    /// from 1, `HH:MM:SS.mmm --> HH:MM:SS.mmm`, its text on one line and escaped.
    pub fn to_webvtt(&self) -> Result<String, TimelineError> {
        self.validate()?;
        let mut out = String::with_capacity(16 + self.segments.len() * 96);
        out.push_str("WEBVTT\n");
        for (i, s) in self.segments.iter().enumerate() {
            out.push_str(&format!(
                "\n{}\n{} --> {}\n{}\n",
                i + 1,
                clock(s.start, '.'),
                clock(s.end, '.'),
                vtt_escape(&one_line(&s.text))
            ));
        }
        Ok(out)
    }

    /// An SRT file: numbered cues from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, the text on one line,
    /// a blank line after each.
    pub fn to_srt(&self) -> Result<String, TimelineError> {
        self.validate()?;
        let mut out = String::with_capacity(self.segments.len() * 96);
        for (i, s) in self.segments.iter().enumerate() {
            out.push_str(&format!(
                "{}\n{} --> {}\n{}\n\n",
                i + 1,
                clock(s.start, ','),
                clock(s.end, ','),
                one_line(&s.text)
            ));
        }
        Ok(out)
    }

    /// The Podcasting 2.0 JSON transcript: `{"version": "1.0.0", "segments": [{"startTime",
    /// "endTime", "body"}]}`, one segment per sentence, times in seconds to the millisecond.
    pub fn to_json_transcript(&self) -> Result<String, TimelineError> {
        self.validate()?;
        let transcript = JsonTranscript {
            version: JSON_TRANSCRIPT_VERSION,
            segments: self
                .segments
                .iter()
                .map(|s| JsonSegment {
                    start_time: rounded(s.start),
                    end_time: rounded(s.end),
                    body: one_line(&s.text),
                })
                .collect(),
        };
        serde_json::to_string(&transcript).map_err(|e| TimelineError::Json(e.to_string()))
    }

    /// The Podcasting 2.0 JSON chapters file (`application/json+chapters`): `{"version":
    /// "1.2.0", "chapters": [{"startTime", "title"}]}`, in ascending order of start.
    pub fn to_json_chapters(&self) -> Result<String, TimelineError> {
        self.validate()?;
        let chapters = JsonChapters {
            version: JSON_CHAPTERS_VERSION,
            chapters: self
                .chapters
                .iter()
                .map(|c| JsonChapter { start_time: rounded(c.start), title: one_line(&c.title) })
                .collect(),
        };
        serde_json::to_string(&chapters).map_err(|e| TimelineError::Json(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(kind: BlockKind) -> TimelineBlock {
        TimelineBlock { kind, level: (kind == BlockKind::Heading).then_some(2) }
    }

    fn segment(start: f64, end: f64, text: &str, block: u32) -> Segment {
        Segment { start, end, text: text.into(), block }
    }

    fn timeline(segments: Vec<Segment>, blocks: Vec<TimelineBlock>) -> Timeline {
        let duration_seconds = segments.last().map_or(0.0, |s| s.end + 0.5);
        Timeline { duration_seconds, language: Some("en".into()), segments, blocks, chapters: vec![] }
    }

    #[test]
    fn clocks_carry_hours_minutes_seconds_and_milliseconds() {
        assert_eq!(clock(0.0, '.'), "00:00:00.000");
        assert_eq!(clock(3725.0429, '.'), "01:02:05.043");
        assert_eq!(clock(59.9996, ','), "00:01:00,000");
        assert_eq!(clock(360_000.0, '.'), "100:00:00.000");
    }

    #[test]
    fn cue_text_is_one_escaped_line() {
        assert_eq!(one_line("  a\n\nb\r\n\tc\u{7}d  "), "a b c d");
        assert_eq!(vtt_escape("a --> b & <c>"), "a --&gt; b &amp; &lt;c&gt;");
    }

    #[test]
    fn segment_at_finds_the_interval_holding_t() {
        let t = timeline(
            vec![segment(0.5, 1.0, "One.", 0), segment(1.0, 2.0, "Two.", 0), segment(2.5, 3.0, "Three.", 0)],
            vec![block(BlockKind::Paragraph)],
        );
        assert_eq!(t.segment_at(0.0), None);
        assert_eq!(t.segment_at(0.5), Some(0));
        assert_eq!(t.segment_at(0.999), Some(0));
        assert_eq!(t.segment_at(1.0), Some(1));
        assert_eq!(t.segment_at(2.2), None, "the pause between two sentences");
        assert_eq!(t.segment_at(2.9), Some(2));
        assert_eq!(t.segment_at(3.0), None);
        assert_eq!(t.segment_at(f64::NAN), None);
    }

    #[test]
    fn validation_names_the_first_bad_segment() {
        let blocks = vec![block(BlockKind::Paragraph)];
        let overlap = timeline(vec![segment(0.0, 1.0, "A.", 0), segment(0.9, 2.0, "B.", 0)], blocks.clone());
        assert!(matches!(overlap.validate(), Err(TimelineError::Overlap { index: 1, .. })));
        let empty = timeline(vec![segment(1.0, 1.0004, "A.", 0)], blocks.clone());
        assert!(matches!(empty.validate(), Err(TimelineError::EmptyInterval { index: 0, .. })));
        let blank = timeline(vec![segment(0.0, 1.0, " \n ", 0)], blocks.clone());
        assert_eq!(blank.validate(), Err(TimelineError::EmptyText { index: 0 }));
        let unknown = timeline(vec![segment(0.0, 1.0, "A.", 3)], blocks.clone());
        assert!(matches!(unknown.validate(), Err(TimelineError::UnknownBlock { block: 3, .. })));
        let mut past = timeline(vec![segment(0.0, 1.0, "A.", 0)], blocks.clone());
        past.duration_seconds = 0.5;
        assert!(matches!(past.validate(), Err(TimelineError::PastTheEnd { index: 0, .. })));
        let nan = timeline(vec![segment(f64::NAN, 1.0, "A.", 0)], blocks.clone());
        assert!(matches!(nan.validate(), Err(TimelineError::BadTime { .. })));
        let mut chapters = timeline(vec![segment(0.0, 1.0, "A.", 0)], blocks);
        chapters.chapters =
            vec![Chapter { start: 0.8, title: "B".into() }, Chapter { start: 0.2, title: "A".into() }];
        assert!(matches!(chapters.validate(), Err(TimelineError::ChapterOutOfPlace { index: 1, .. })));
        assert!(chapters.to_json_chapters().is_err(), "writers refuse what validation refuses");
    }

    #[test]
    fn stored_json_round_trips_and_bad_json_is_named() {
        let t = timeline(vec![segment(0.0, 1.25, "Hello.", 0)], vec![block(BlockKind::Quote)]);
        let json = t.to_json();
        assert!(json.contains("\"kind\":\"quote\""), "{json}");
        assert_eq!(Timeline::from_json(json.as_bytes()), Ok(t));
        assert!(matches!(Timeline::from_json(b"{\"segments\": 3}"), Err(TimelineError::Json(_))));
    }
}
