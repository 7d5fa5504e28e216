//! Embedded adapters for the local default: the SQLite event log and its outbox, the object
//! folder, the espeak-ng voice.

pub mod espeak;
