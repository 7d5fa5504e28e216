//! The work of each conversion step, written against `lector-core`'s ports and free of any
//! adapter: a step handler (Lambda or local engine) calls these in a few lines.
//!
//! - [`fetch`]: guarded fetching of what a user named (http(s) only, no private addresses
//!   unless allowed, DNS resolved once, size and time limits, redirects re-checked);
//! - [`feed`]: RSS, Atom and JSON feeds to posts, recovering broken feeds where it is safe;
//! - [`article`]: a page's readable text, as a [`document::Document`] of blocks;
//! - [`narrate`] and [`speech`]: what is read aloud, cut into escaped SSML chunks within a
//!   voice's limits;
//! - [`stitch`]: MP3 chunks joined by frames, the duration counted from the frames.
//!
//! Every error type maps onto [`lector_core::StepError`] with a stable name, so a handler can
//! use `?` and the workflow retries only what is transient.

pub mod article;
pub mod cover;
pub mod document;
pub mod feed;
pub mod fetch;
pub mod narrate;
pub mod podcast;
pub mod poll;
pub mod replay;
pub mod speech;
pub mod steps;
pub mod stitch;
pub mod submit;
pub mod timeline;
pub mod voices;
pub mod websub;

pub use article::{Article, ArticleError, extract_article, fetch_article};
pub use document::{Block, Document};
pub use feed::{Feed, FeedError, Post, fetch_feed, parse_feed};
pub use fetch::{AllowList, Backoff, FetchError, FetchPolicy, Fetched, Fetcher, Resource};
pub use narrate::{Narration, Part, Pause, narrate};
pub use speech::{Chunk, Speech, SpeechError, Unit};
pub use stitch::{Mp3Info, StitchError, Stitched, inspect, stitch};
