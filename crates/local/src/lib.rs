//! Embedded adapters for the local default: the SQLite event log and its outbox, the lists of
//! conversions and subscriptions, the object folder, the espeak-ng voice.

pub mod clock;
pub mod db;
pub mod espeak;
pub mod event_store;
pub mod feed_index;
pub mod index;
pub mod mp3;
pub mod objects;
pub mod outbox;
