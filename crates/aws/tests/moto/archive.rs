//! Archive replays against moto's EventBridge: events put on a bus are archived, a replay of the
//! window sends them to the bus's rules again (seen on an SQS queue), a second start of the
//! same window finds the first replay instead of sending them twice, and the request names the
//! archive, the window, the bus and the rules as AWS expects (moto ignores `FilterArns` and the
//! window when it replays, so those are checked on the request).

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::Utc;
use lector_aws::archive::{ArchiveError, ArchiveReplays, ReplayState, Started, Window, replay_name};
use lector_testkit::services::{moto_config, subscriber_queue, unique_name};
use serde_json::{Value, json};

use crate::capture::Capture;

struct Archived {
    eventbridge: aws_sdk_eventbridge::Client,
    bus: String,
    archive: String,
    rule: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

/// A bus with an archive of its `lector` events and a rule sending them to a queue.
async fn archived_bus() -> Archived {
    let config = moto_config().await;
    let eventbridge = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus = unique_name("bus");
    let bus_arn = eventbridge
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("the bus is created")
        .event_bus_arn()
        .expect("a bus ARN")
        .to_owned();
    let archive = unique_name("archive");
    eventbridge
        .create_archive()
        .archive_name(&archive)
        .event_source_arn(&bus_arn)
        .event_pattern(r#"{"source": ["lector"]}"#)
        .retention_days(90)
        .send()
        .await
        .expect("the archive is created");
    let (queue_url, rule) = subscriber_queue(&eventbridge, &sqs, &bus, r#"{"source": ["lector"]}"#).await;
    Archived { eventbridge, bus, archive, rule, sqs, queue_url }
}

impl Archived {
    async fn put(&self, detail_types: &[&str]) {
        let entries: Vec<PutEventsRequestEntry> = detail_types
            .iter()
            .enumerate()
            .map(|(n, t)| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source("lector")
                    .detail_type(*t)
                    .detail(json!({"n": n}).to_string())
                    .build()
            })
            .collect();
        let out = self.eventbridge.put_events().set_entries(Some(entries)).send().await.unwrap();
        assert_eq!(out.failed_entry_count(), 0);
    }

    /// Every message on the queue until none comes for `quiet`.
    async fn drain(&self, quiet: Duration) -> Vec<Value> {
        let mut bodies = Vec::new();
        let mut idle_since = std::time::Instant::now();
        while idle_since.elapsed() < quiet {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            for message in out.messages() {
                bodies.push(serde_json::from_str(message.body().unwrap_or("null")).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                idle_since = std::time::Instant::now();
            }
            if out.messages().is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        bodies
    }
}

fn window() -> Window {
    Window::new(Utc::now() - chrono::Duration::hours(1), Utc::now()).unwrap()
}

#[tokio::test]
async fn archived_events_are_replayed_to_the_bus_once_per_window() {
    let archived = archived_bus().await;
    archived.put(&["ConversionRequested", "ConversionFailed", "ConversionRetried"]).await;
    let originals = archived.drain(Duration::from_millis(300)).await;
    assert_eq!(originals.len(), 3, "the rule saw each event once: {originals:?}");

    let replays = ArchiveReplays::new(archived.eventbridge.clone(), &archived.archive);
    let archive = replays.describe_archive().await.unwrap();
    assert_eq!(archive.bus_name(), archived.bus);
    assert_eq!(archive.event_count, 3, "every lector event is archived");

    let window = window();
    let started = replays.start(&archive, &window, &[]).await.unwrap();
    let Started::New(replay) = &started else { panic!("expected a new replay, got {started:?}") };
    assert_eq!(replay.name, replay_name(&archived.archive, &window, &[]));
    assert_eq!(replay.destination_arn.as_deref(), Some(archive.source_arn.as_str()));
    let done = replays.wait(&replay.name, Duration::from_millis(100), |_| {}).await.unwrap();
    assert_eq!(done.state, ReplayState::Completed);

    let replayed = archived.drain(Duration::from_millis(300)).await;
    let mut types: Vec<&str> = replayed.iter().filter_map(|e| e["detail-type"].as_str()).collect();
    types.sort_unstable();
    assert_eq!(types, ["ConversionFailed", "ConversionRequested", "ConversionRetried"]);
    assert!(
        replayed.iter().all(|e| e["replay-name"] == replay.name.as_str()),
        "each replayed event names its replay: {replayed:?}"
    );

    let again = replays.start(&archive, &window, &[]).await.unwrap();
    assert!(matches!(&again, Started::Existing(r) if r.name == replay.name), "{again:?}");
    assert!(archived.drain(Duration::from_millis(300)).await.is_empty(), "nothing is sent twice");
}

#[tokio::test]
async fn a_replay_to_named_rules_sends_their_arns_and_the_window() {
    let archived = archived_bus().await;
    let capture = Capture::default();
    let config =
        aws_sdk_eventbridge::config::Builder::from(&moto_config().await).interceptor(capture.clone());
    let replays =
        ArchiveReplays::new(aws_sdk_eventbridge::Client::from_conf(config.build()), &archived.archive);
    let archive = replays.describe_archive().await.unwrap();
    let rule_arn = archived
        .eventbridge
        .describe_rule()
        .name(&archived.rule)
        .event_bus_name(&archived.bus)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let window = window();
    let rules = [archived.rule.clone()];
    let started = replays.start(&archive, &window, &rules).await.unwrap();
    assert!(matches!(started, Started::New(_)));

    let request = capture
        .requests()
        .into_iter()
        .find(|r| r.target.as_deref() == Some("AWSEvents.StartReplay"))
        .expect("StartReplay was sent");
    assert_eq!(
        request.body,
        json!({
            "ReplayName": replay_name(&archived.archive, &window, &rules),
            "Description": format!(
                "lector events replay: {} to {}, rules {}",
                window.since().to_rfc3339(),
                window.until().to_rfc3339(),
                archived.rule
            ),
            "EventSourceArn": archive.arn,
            "EventStartTime": window.since().timestamp(),
            "EventEndTime": window.until().timestamp(),
            "Destination": {"Arn": archive.source_arn, "FilterArns": [rule_arn]},
        })
    );
}

#[tokio::test]
async fn unknown_archives_and_rules_are_named() {
    let archived = archived_bus().await;
    let missing = ArchiveReplays::new(archived.eventbridge.clone(), "no-such-archive");
    match missing.describe_archive().await {
        Err(ArchiveError::NotFound(reason)) => assert!(reason.contains("no-such-archive"), "{reason}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let replays = ArchiveReplays::new(archived.eventbridge.clone(), &archived.archive);
    let archive = replays.describe_archive().await.unwrap();
    match replays.start(&archive, &window(), &["no-such-rule".to_owned()]).await {
        Err(ArchiveError::NotFound(reason)) => {
            assert!(reason.contains("no-such-rule") && reason.contains(&archived.bus), "{reason}")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}
