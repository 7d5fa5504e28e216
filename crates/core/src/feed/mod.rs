//! The feed subscription: the second aggregate beside the conversion, with its own stream
//! (`feed-<feed id>`) in the same log and the same envelope.
//!
//! - [`event`]: the subscription's events (the published contract);
//! - [`subscription`]: the aggregate; [`subscription::decide`] holds every rule (what a poll
//!   found new or changed, when the next poll is, when a failure pauses it),
//!   [`subscription::evolve`] only applies;
//! - [`status`]: what the front-end sees of a subscription, a pure fold of its stream;
//! - [`index`]: the list of subscriptions (a projection that can be dropped and rebuilt from
//!   the log) and the feeds due for a poll;
//! - [`service`]: running a command against a subscription's stream.
//!
//! A subscription and a conversion meet only through events: `PostDiscovered` and
//! `PostChanged` cause a `ConversionRequested` or `ConversionRevisionRequested` (the causation
//! id points back), and neither reads the other's stream to decide.

pub mod event;
pub mod index;
pub mod service;
pub mod status;
pub mod subscription;

pub use event::FeedEvent;
pub use status::{FeedState, FeedStatus};
pub use subscription::{FeedCommand, FeedError, Subscription};
