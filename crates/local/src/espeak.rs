//! The espeak-ng voice.
