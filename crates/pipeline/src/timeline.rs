//! The timing of a conversion's audio: when each spoken sentence starts and ends, how the
//! sentences group into the post's blocks, and the chapters its headings give. Stitching builds
//! it from the units' frame-counted durations; the transcripts and the read-along player are
//! made from it.

use serde::{Deserialize, Serialize};

/// The timing of one conversion's audio.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub duration_seconds: f64,
    /// BCP 47.
    pub language: Option<String>,
    /// Every spoken sentence, in order.
    pub segments: Vec<Segment>,
    /// How segments group into the post's blocks (`Segment::block` indexes this).
    pub blocks: Vec<TimelineBlock>,
    /// From headings; may be empty.
    pub chapters: Vec<Chapter>,
}

/// One spoken sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub block: u32,
}

/// A block of the post as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineBlock {
    pub kind: BlockKind,
    pub level: Option<u8>,
}

/// What a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    Heading,
    Paragraph,
    ListItem,
    Quote,
}

/// A chapter: where it starts and its title.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chapter {
    pub start: f64,
    pub title: String,
}

/// The chapters of a post: one per heading, at the heading's first sentence, titled with the
/// heading's text. When the first heading is not at the start, a first chapter at 0 carries
/// the post's title. A post without headings has no chapters.
pub fn chapters_from_headings(segments: &[Segment], blocks: &[TimelineBlock], title: &str) -> Vec<Chapter> {
    let mut chapters: Vec<Chapter> = Vec::new();
    let mut last_block = None;
    for segment in segments {
        let is_heading = blocks.get(segment.block as usize).is_some_and(|b| b.kind == BlockKind::Heading);
        if !is_heading {
            continue;
        }
        match (last_block, chapters.last_mut()) {
            // A heading read as several sentences is one chapter.
            (Some(block), Some(chapter)) if block == segment.block => {
                chapter.title.push(' ');
                chapter.title.push_str(segment.text.trim());
            }
            _ => chapters.push(Chapter { start: segment.start, title: segment.text.trim().to_owned() }),
        }
        last_block = Some(segment.block);
    }
    if let Some(first) = chapters.first()
        && first.start > 0.0
    {
        let title = if title.trim().is_empty() { "Introduction" } else { title.trim() };
        chapters.insert(0, Chapter { start: 0.0, title: title.to_owned() });
    }
    chapters
}
