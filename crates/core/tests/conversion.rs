//! The Conversion aggregate's rules, given events, when a command, then events or an error.

use lector_core::conversion::{Command, Conversion, DomainError, Phase, decide};
use lector_core::event::*;
use lector_core::{ConversionId, ObjectKey, VoiceEngine, VoiceId};
use url::Url;

fn id() -> ConversionId {
    ConversionId::derive(
        &Url::parse("https://blog.example/post").unwrap(),
        &VoiceId::new("en-us"),
        VoiceEngine::Espeak,
    )
}

fn requested() -> ConversionEvent {
    ConversionEvent::ConversionRequested(ConversionRequested {
        conversion_id: id(),
        post_url: Url::parse("https://blog.example/post").unwrap(),
        title: Some("A post".into()),
        feed_url: None,
        feed_id: None,
        feed_title: None,
        content_ref: None,
        voice: VoiceId::new("en-us"),
        engine: VoiceEngine::Espeak,
        requested_by: "test".into(),
        post: None,
        content_hash: None,
        feed_language: None,
        pronunciations: Vec::new(),
    })
}

fn started(attempt: u32) -> ConversionEvent {
    ConversionEvent::ConversionStarted(ConversionStarted { execution_id: format!("exec-{attempt}"), attempt })
}

fn article(attempt: u32) -> ArticleFetched {
    ArticleFetched {
        attempt,
        title: "A post".into(),
        byline: None,
        language: Some("en".into()),
        words: 120,
        characters: 700,
        text_ref: ObjectKey::article_text(&id(), attempt),
        source: ArticleSource::Page,
        content_hash: None,
        summary: None,
        published_at: None,
    }
}

fn speech(attempt: u32, chunks: u32) -> SpeechPrepared {
    SpeechPrepared {
        attempt,
        chunks,
        characters: 700,
        chunks_ref: ObjectKey::speech_chunks(&id(), attempt),
        units: None,
        units_cached: None,
        voice: None,
        language: None,
        language_note: None,
    }
}

fn chunk(attempt: u32, index: u32) -> ChunkSynthesized {
    ChunkSynthesized {
        attempt,
        index,
        audio_ref: None,
        bytes: 1000,
        duration_seconds: 2.0,
        units: 1,
        units_synthesized: 1,
        units_reused: 0,
        characters_synthesized: 0,
        characters_reused: 0,
    }
}

fn completed(attempt: u32) -> ConversionCompleted {
    ConversionCompleted {
        attempt,
        audio_ref: ObjectKey::audio(&id()),
        bytes: 3000,
        duration_seconds: 6.0,
        format: AudioFormat::Mp3,
        revision: None,
        timings_ref: None,
        synthesis: None,
        chapters: None,
    }
}

fn failed(attempt: u32) -> ConversionFailed {
    ConversionFailed {
        attempt,
        state: "FetchArticle".into(),
        error: "Lector.NotFound".into(),
        cause: "HTTP 404".into(),
    }
}

fn given(events: &[ConversionEvent]) -> Conversion {
    Conversion::from_events(events)
}

fn then_types(state: &Conversion, command: Command) -> Vec<&'static str> {
    decide(state, command).unwrap().iter().map(|d| d.event.event_type()).collect()
}

fn processing_with_speech(chunks: u32) -> Vec<ConversionEvent> {
    vec![
        requested(),
        started(1),
        ConversionEvent::ArticleFetched(article(1)),
        ConversionEvent::SpeechPrepared(speech(1, chunks)),
    ]
}

#[test]
fn a_request_on_a_new_stream_is_recorded_and_a_repeated_one_is_a_no_op() {
    let ConversionEvent::ConversionRequested(r) = requested() else { unreachable!() };
    assert_eq!(then_types(&given(&[]), Command::Request(r.clone())), ["ConversionRequested"]);
    assert!(decide(&given(&[requested()]), Command::Request(r.clone())).unwrap().is_empty());
    // Even after completion, submitting again is idempotent rather than an error.
    let mut done = processing_with_speech(1);
    done.push(ConversionEvent::ChunkSynthesized(chunk(1, 0)));
    done.push(ConversionEvent::ConversionCompleted(completed(1)));
    assert!(decide(&given(&done), Command::Request(r)).unwrap().is_empty());
}

#[test]
fn nothing_completes_before_every_chunk_is_synthesized() {
    let mut events = processing_with_speech(3);
    events.push(ConversionEvent::ChunkSynthesized(chunk(1, 0)));
    events.push(ConversionEvent::ChunkSynthesized(chunk(1, 2)));
    let err = decide(&given(&events), Command::Complete(completed(1))).unwrap_err();
    assert_eq!(err, DomainError::MissingChunks { missing: vec![1] });

    events.push(ConversionEvent::ChunkSynthesized(chunk(1, 1)));
    assert_eq!(then_types(&given(&events), Command::Complete(completed(1))), ["ConversionCompleted"]);
}

#[test]
fn completing_without_speech_or_with_empty_audio_is_refused() {
    let events = vec![requested(), started(1), ConversionEvent::ArticleFetched(article(1))];
    assert!(matches!(
        decide(&given(&events), Command::Complete(completed(1))),
        Err(DomainError::OutOfOrder { .. })
    ));
    let mut events = processing_with_speech(1);
    events.push(ConversionEvent::ChunkSynthesized(chunk(1, 0)));
    let empty = ConversionCompleted { bytes: 0, ..completed(1) };
    assert_eq!(decide(&given(&events), Command::Complete(empty)), Err(DomainError::EmptyAudio));
    let silent = ConversionCompleted { duration_seconds: 0.0, ..completed(1) };
    assert_eq!(decide(&given(&events), Command::Complete(silent)), Err(DomainError::EmptyAudio));
}

#[test]
fn a_duplicate_step_event_is_a_no_op() {
    let mut events = processing_with_speech(2);
    events.push(ConversionEvent::ChunkSynthesized(chunk(1, 0)));
    let state = given(&events);
    assert!(decide(&state, Command::RecordChunk(chunk(1, 0))).unwrap().is_empty());
    assert!(decide(&state, Command::RecordArticle(article(1))).unwrap().is_empty());
    assert!(decide(&state, Command::PrepareSpeech(speech(1, 2))).unwrap().is_empty());
    assert!(
        decide(&state, Command::Start(ConversionStarted { execution_id: "exec-1".into(), attempt: 1 }))
            .unwrap()
            .is_empty()
    );
    // A retried stitch that stored the same audio again.
    events.push(ConversionEvent::ChunkSynthesized(chunk(1, 1)));
    events.push(ConversionEvent::ConversionCompleted(completed(1)));
    assert!(decide(&given(&events), Command::Complete(completed(1))).unwrap().is_empty());
}

#[test]
fn the_same_fact_decided_twice_gets_the_same_event_id() {
    let state = given(&processing_with_speech(2));
    let a = decide(&state, Command::RecordChunk(chunk(1, 1))).unwrap();
    let b = decide(&state, Command::RecordChunk(chunk(1, 1))).unwrap();
    let c = decide(&state, Command::RecordChunk(chunk(1, 0))).unwrap();
    assert_eq!(a[0].event_id, b[0].event_id);
    assert_ne!(a[0].event_id, c[0].event_id);
}

#[test]
fn events_after_completion_are_refused() {
    let mut events = processing_with_speech(1);
    events.push(ConversionEvent::ChunkSynthesized(chunk(1, 0)));
    events.push(ConversionEvent::ConversionCompleted(completed(1)));
    let state = given(&events);
    for command in [
        Command::Start(ConversionStarted { execution_id: "other".into(), attempt: 1 }),
        Command::RecordArticle(article(1)),
        Command::RecordChunk(chunk(1, 0)),
        Command::Fail(failed(1)),
        Command::Complete(ConversionCompleted {
            audio_ref: ObjectKey::new("audio/other.mp3").unwrap(),
            ..completed(1)
        }),
        Command::Retry { how: RetryMethod::Redrive, by: "ops".into(), reason: None },
    ] {
        let err = decide(&state, command.clone()).unwrap_err();
        assert!(
            matches!(err, DomainError::AlreadyCompleted | DomainError::NotFailed { .. }),
            "{command:?} gave {err:?}"
        );
    }
}

#[test]
fn a_retry_only_follows_a_failure() {
    let running = given(&[requested(), started(1)]);
    assert!(matches!(
        decide(&running, Command::Retry { how: RetryMethod::Restart, by: "ops".into(), reason: None }),
        Err(DomainError::NotFailed { .. })
    ));
    let failed_state = given(&[requested(), started(1), ConversionEvent::ConversionFailed(failed(1))]);
    let decided = decide(
        &failed_state,
        Command::Retry { how: RetryMethod::Restart, by: "ops".into(), reason: Some("site is back".into()) },
    )
    .unwrap();
    let ConversionEvent::ConversionRetried(retried) = &decided[0].event else { panic!() };
    assert_eq!(retried.attempt, 2, "a restart runs the next attempt");
    let redrive =
        decide(&failed_state, Command::Retry { how: RetryMethod::Redrive, by: "ops".into(), reason: None })
            .unwrap();
    let ConversionEvent::ConversionRetried(retried) = &redrive[0].event else { panic!() };
    assert_eq!(retried.attempt, 1, "a redrive resumes the same attempt");
    assert!(
        decide(&failed_state, Command::Retry { how: RetryMethod::Redrive, by: " ".into(), reason: None })
            .is_err()
    );
}

#[test]
fn a_restart_starts_a_new_attempt_and_refuses_late_steps_of_the_old_one() {
    let events = vec![
        requested(),
        started(1),
        ConversionEvent::ArticleFetched(article(1)),
        ConversionEvent::ConversionFailed(failed(1)),
        ConversionEvent::ConversionRetried(ConversionRetried {
            how: RetryMethod::Restart,
            by: "ops".into(),
            reason: None,
            attempt: 2,
        }),
    ];
    let state = given(&events);
    assert!(state.article.is_none(), "a restart forgets the old attempt's work");
    assert_eq!(
        decide(&state, Command::Start(ConversionStarted { execution_id: "exec-1".into(), attempt: 1 })),
        Err(DomainError::WrongAttempt { given: 1, current: 2 })
    );
    assert_eq!(
        then_types(&state, Command::Start(ConversionStarted { execution_id: "e2".into(), attempt: 2 })),
        ["ConversionStarted"]
    );
    let mut events = events;
    events.push(started(2));
    assert_eq!(
        decide(&given(&events), Command::RecordArticle(article(1))),
        Err(DomainError::WrongAttempt { given: 1, current: 2 })
    );
}

#[test]
fn a_redrive_keeps_the_work_done_and_accepts_the_rest() {
    let mut events = processing_with_speech(2);
    events.push(ConversionEvent::ChunkSynthesized(chunk(1, 0)));
    events.push(ConversionEvent::ConversionFailed(ConversionFailed {
        state: "SynthesizeChunks".into(),
        error: "Lector.Transient".into(),
        ..failed(1)
    }));
    // A chunk that finished while the other failed is still recorded.
    assert_eq!(then_types(&given(&events), Command::RecordChunk(chunk(1, 1))), ["ChunkSynthesized"]);
    events.push(ConversionEvent::ConversionRetried(ConversionRetried {
        how: RetryMethod::Redrive,
        by: "ops".into(),
        reason: None,
        attempt: 1,
    }));
    let state = given(&events);
    assert_eq!(state.missing_chunks(), vec![1]);
    assert!(decide(&state, Command::RecordChunk(chunk(1, 0))).unwrap().is_empty());
    assert_eq!(then_types(&state, Command::RecordChunk(chunk(1, 1))), ["ChunkSynthesized"]);
}

#[test]
fn a_second_execution_of_the_same_attempt_is_refused() {
    let state = given(&[requested(), started(1)]);
    assert!(matches!(
        decide(&state, Command::Start(ConversionStarted { execution_id: "intruder".into(), attempt: 1 })),
        Err(DomainError::AlreadyStarted { .. })
    ));
}

#[test]
fn steps_out_of_order_or_out_of_range_are_refused() {
    let state = given(&[requested(), started(1)]);
    assert!(matches!(
        decide(&state, Command::PrepareSpeech(speech(1, 2))),
        Err(DomainError::OutOfOrder { .. })
    ));
    assert!(matches!(decide(&state, Command::RecordChunk(chunk(1, 0))), Err(DomainError::OutOfOrder { .. })));
    let state = given(&processing_with_speech(2));
    assert_eq!(
        decide(&state, Command::RecordChunk(chunk(1, 2))),
        Err(DomainError::ChunkOutOfRange { index: 2, chunks: 2 })
    );
    assert_eq!(
        decide(&given(&[]), Command::Start(ConversionStarted { execution_id: "e".into(), attempt: 1 })),
        Err(DomainError::NotRequested)
    );
    assert_eq!(
        decide(&given(&[requested()]), Command::RecordArticle(article(1))),
        Err(DomainError::OutOfOrder { step: "a step", missing: "ConversionStarted" })
    );
}

#[test]
fn a_failure_is_recorded_once_per_attempt() {
    let state = given(&[requested(), started(1)]);
    assert_eq!(then_types(&state, Command::Fail(failed(1))), ["ConversionFailed"]);
    let state = given(&[requested(), started(1), ConversionEvent::ConversionFailed(failed(1))]);
    assert!(decide(&state, Command::Fail(failed(1))).unwrap().is_empty());
}

fn revision(hash: Option<&str>) -> Command {
    Command::Revise(lector_core::conversion::Revision {
        reason: RevisionReason::PostChanged,
        content_ref: None,
        content_hash: hash.map(str::to_owned),
        title: Some("A post, edited".into()),
        post: None,
        requested_by: "feed".into(),
        pronunciations: Vec::new(),
    })
}

fn completed_first_revision() -> Vec<ConversionEvent> {
    let mut events = processing_with_speech(1);
    let mut fetched = article(1);
    fetched.content_hash = Some("h1".into());
    events[2] = ConversionEvent::ArticleFetched(fetched);
    events.push(ConversionEvent::ChunkSynthesized(chunk(1, 0)));
    events.push(ConversionEvent::ConversionCompleted(completed(1)));
    events
}

#[test]
fn an_edited_post_gets_the_next_revision_keeping_the_served_audio() {
    let mut events = completed_first_revision();
    let decided = decide(&given(&events), revision(Some("h2"))).unwrap();
    let ConversionEvent::ConversionRevisionRequested(r) = &decided[0].event else { panic!("{decided:?}") };
    assert_eq!((r.revision, r.attempt), (2, 2));
    events.push(decided[0].event.clone());
    let state = given(&events);
    assert_eq!(state.phase, Phase::Requested);
    assert!(state.completed.is_none() && state.article.is_none() && state.chunks.is_empty());
    assert_eq!(
        state.served.as_ref().map(|c| c.attempt),
        Some(1),
        "the first revision's audio is still served"
    );
    assert_eq!(state.execution_name().unwrap(), id().revision_execution_name(2, 2));
    assert!(state.execution_name().unwrap().ends_with("-r2-2"));
    // The new revision runs as attempt 2; a late step of attempt 1 is refused.
    assert_eq!(
        decide(&state, Command::Start(ConversionStarted { execution_id: "old".into(), attempt: 1 }))
            .unwrap_err(),
        DomainError::WrongAttempt { given: 1, current: 2 }
    );
    assert_eq!(
        then_types(&state, Command::Start(ConversionStarted { execution_id: "new".into(), attempt: 2 })),
        ["ConversionStarted"]
    );
}

#[test]
fn the_same_text_again_is_no_revision() {
    let events = completed_first_revision();
    assert!(decide(&given(&events), revision(Some("h1"))).unwrap().is_empty());
    // Delivered twice, the same change makes one revision.
    let mut events = completed_first_revision();
    events.push(decide(&given(&events), revision(Some("h2"))).unwrap().remove(0).event);
    assert!(decide(&given(&events), revision(Some("h2"))).unwrap().is_empty());
}

#[test]
fn an_edit_during_a_run_supersedes_it_and_never_interleaves() {
    let mut events = processing_with_speech(2);
    events.push(ConversionEvent::ChunkSynthesized(chunk(1, 0)));
    let decided = decide(&given(&events), revision(Some("h9"))).unwrap();
    events.push(decided[0].event.clone());
    let state = given(&events);
    assert_eq!((state.revision, state.attempt, state.phase), (2, 2, Phase::Requested));
    // The running attempt's remaining chunk and its completion are refused: they belong to
    // the superseded attempt.
    assert_eq!(
        decide(&state, Command::RecordChunk(chunk(1, 1))).unwrap_err(),
        DomainError::WrongAttempt { given: 1, current: 2 }
    );
    assert!(decide(&state, Command::Complete(completed(1))).is_err());
}

#[test]
fn a_revision_of_nothing_requested_is_refused() {
    assert_eq!(decide(&given(&[]), revision(Some("x"))).unwrap_err(), DomainError::NotRequested);
}
