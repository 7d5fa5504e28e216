//! Lector's domain, with no I/O: no AWS, no SQLite, no HTTP, no clock.
//!
//! - [`id`], [`voice`], [`object`]: the identifiers and values everything else passes around;
//! - [`event`] and [`envelope`]: the eight conversion events (the published contract) and the
//!   envelope the log stores them in;
//! - [`conversion`]: the aggregate; [`conversion::decide`] holds every rule,
//!   [`conversion::evolve`] only applies;
//! - [`feed`]: the second aggregate, a feed subscription, with its events, rules, status and
//!   list; [`schedule`]: when a subscribed feed is polled next;
//! - [`status`]: the status projection, a pure fold of a stream;
//! - [`store`] and [`ports`]: the ports the adapters of `lector-local` and `lector-aws`
//!   implement; [`service`] runs a command against the event store port;
//! - [`pronunciation`]: how words are to be said (substitutions, IPA, say-as), per
//!   subscription and by default;
//! - [`step_error`]: the stable error names the workflow retries and catches on;
//! - [`response`]: the API's `{status, message, data}` envelope.

pub mod conversion;
pub mod envelope;
pub mod event;
pub mod feed;
pub mod id;
pub mod index;
pub mod kept;
pub mod object;
pub mod ports;
pub mod pronunciation;
pub mod response;
pub mod schedule;
pub mod schema;
pub mod service;
pub mod status;
pub mod step_error;
pub mod store;
pub mod voice;

pub use conversion::{Command, Conversion, DomainError, Phase, decide, evolve};
pub use envelope::{EventEnvelope, EventMeta, NewEvent, RecordedEvent};
pub use event::ConversionEvent;
pub use id::{ConversionId, EventId, FeedId, StreamId};
pub use object::ObjectKey;
pub use status::{ConversionState, ConversionStatus, Stage};
pub use step_error::{ErrorKind, StepError};
pub use store::{AppendOutcome, EventStore, ExpectedVersion, StoreError};
pub use voice::{VoiceEngine, VoiceId};
