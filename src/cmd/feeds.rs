//! `lector feeds`: subscribe to feeds and manage the subscriptions of the local data folder.
//! Every change is an event on the subscription's stream, as through the API; `lector serve`
//! polls what is due and narrates what the polls find.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use lector_core::feed::event::{FeedSubscribed, PodcastOwner};
use lector_core::feed::index::{FeedIndex, list_all_feeds};
use lector_core::feed::service::execute_feed;
use lector_core::feed::subscription::{FeedCommand, MAX_BACKFILL};
use lector_core::feed::{FeedState, FeedStatus};
use lector_core::ports::Clock;
use lector_core::schedule::DEFAULT_INTERVAL;
use lector_core::{EventMeta, EventStore, FeedId, VoiceEngine, VoiceId};
use lector_local::clock::SystemClock;
use lector_local::feed_index::SqliteFeedIndex;
use lector_pipeline::fetch::AllowList;
use lector_pipeline::poll::PollRequest;
use url::Url;

use crate::data::{DataArgs, DataDir, runtime};
use crate::local::{LocalOptions, LocalSystem};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Subscribe to a feed: its new posts are narrated, and its edited posts revised.
    Subscribe(Box<SubscribeArgs>),
    /// List the subscriptions, newest first.
    List {
        /// Only those in this state (active, failing, paused, unsubscribed).
        #[arg(long)]
        state: Option<FeedState>,
        #[arg(long)]
        json: bool,
    },
    /// Show one subscription.
    Show {
        feed_id: FeedId,
        #[arg(long)]
        json: bool,
    },
    /// Poll now, due or not: one feed, or every subscription that is polled.
    Poll {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        feed_id: Option<FeedId>,
        #[arg(long)]
        all: bool,
        /// Hosts that may resolve to private addresses (for feeds on this machine).
        #[arg(long, env = "LECTOR_ALLOW_HOSTS", value_delimiter = ',')]
        allow_host: Vec<String>,
    },
    /// Stop polling a feed until it is resumed.
    Pause { feed_id: FeedId },
    /// Poll a paused feed again (at once, then on schedule).
    Resume { feed_id: FeedId },
    /// End a subscription. Its conversions and their audio stay.
    Unsubscribe { feed_id: FeedId },
}

#[derive(Debug, clap::Args)]
struct SubscribeArgs {
    /// The feed's address (RSS, Atom or JSON Feed).
    url: Url,
    /// How many of its existing posts to narrate at the first poll (0 to 50).
    #[arg(long, default_value_t = 0)]
    backfill: u32,
    /// The voice; by default, the one that speaks each post's language.
    #[arg(long, default_value = "auto")]
    voice: String,
    /// The engine (espeak, piper, or one of Polly's).
    #[arg(long, default_value = "espeak")]
    engine: VoiceEngine,
    /// Do not narrate new posts (they are still recorded).
    #[arg(long)]
    no_auto: bool,
    /// Do not revise a post's narration when the post is edited.
    #[arg(long)]
    no_regenerate: bool,
    /// Minutes between polls (at least 5).
    #[arg(long)]
    interval: Option<u32>,
    /// The podcast owner's name and email, as Apple Podcasts asks for them.
    #[arg(long, requires = "owner_email")]
    owner_name: Option<String>,
    #[arg(long, requires = "owner_name")]
    owner_email: Option<String>,
    /// The address `lector serve` is reached at, which the podcast's guid is made from.
    #[arg(long, env = "LECTOR_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    public_url: Url,
}

/// Who the changes made here are recorded as made by.
const BY: &str = "cli";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<ExitCode> {
    let data = DataDir::open(&args.data.dir)?;
    let index = SqliteFeedIndex::new(data.db.clone());
    let clock = SystemClock;
    match args.command {
        Command::Subscribe(subscribe) => {
            let SubscribeArgs {
                url,
                backfill,
                voice,
                engine,
                no_auto,
                no_regenerate,
                interval,
                owner_name,
                owner_email,
                public_url,
            } = *subscribe;
            anyhow::ensure!(backfill <= MAX_BACKFILL, "--backfill is at most {MAX_BACKFILL}");
            let id = FeedId::derive(&url);
            let podcast_url =
                public_url.join(&format!("/feeds/{id}/podcast.xml")).context("the podcast's address")?;
            let subscribed = FeedSubscribed {
                feed_id: id.clone(),
                url,
                voice: VoiceId::new(voice),
                engine,
                auto_convert: !no_auto,
                regenerate_on_edit: !no_regenerate,
                backfill,
                interval_minutes: interval.unwrap_or((DEFAULT_INTERVAL.as_secs() / 60) as u32),
                owner: owner_name.zip(owner_email).map(|(name, email)| PodcastOwner { name, email }),
                podcast_guid: Some(lector_pipeline::podcast::podcast_guid(podcast_url.as_str())),
                subscribed_by: BY.into(),
            };
            let created = change(&data, &index, &clock, &id, FeedCommand::Subscribe(subscribed)).await?;
            let status = status_of(&data, &id).await?;
            if created {
                println!("subscribed: {id}");
            } else {
                println!("already subscribed: {id}");
            }
            print!("{}", render(&status));
        }
        Command::List { state, json } => {
            let mut feeds = list_all_feeds(&index).await.context("reading the subscriptions")?;
            feeds.retain(|f| state.is_none_or(|s| f.state == s));
            if json {
                println!("{}", serde_json::to_string_pretty(&feeds)?);
            } else if feeds.is_empty() {
                println!("no subscriptions");
            } else {
                println!("{:<16}  {:<9}  {:<20}  {:<20}  URL", "FEED", "STATE", "LAST POLL", "NEXT POLL");
                for f in &feeds {
                    let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
                        t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into())
                    };
                    println!(
                        "{:<16}  {:<9}  {:<20}  {:<20}  {}",
                        f.feed_id,
                        f.state.as_str(),
                        at(f.last_poll_at),
                        at(Some(f.next_poll_at)),
                        f.url
                    );
                }
            }
        }
        Command::Show { feed_id, json } => {
            let status = status_of(&data, &feed_id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render(&status));
            }
        }
        Command::Poll { feed_id, all, allow_host } => {
            let ids = match (feed_id, all) {
                (Some(id), _) => vec![id],
                (None, _) => list_all_feeds(&index)
                    .await?
                    .into_iter()
                    .filter(|f| f.state.is_polled())
                    .map(|f| f.feed_id)
                    .collect(),
            };
            if ids.is_empty() {
                println!("no subscription to poll");
                return Ok(ExitCode::SUCCESS);
            }
            for id in &ids {
                let status = status_of(&data, id).await?;
                anyhow::ensure!(
                    status.state.is_polled(),
                    "{id} is {}: resume it to poll",
                    status.state.as_str()
                );
            }
            drop(data);
            let allow = AllowList::parse(&allow_host.join(","))?;
            let system = LocalSystem::start(&args.data.dir, LocalOptions::new(allow)).await?;
            system.polls.run(&PollRequest { feed_ids: Some(ids.clone()), limit: None }).await?;
            let data = DataDir::open(&args.data.dir)?;
            for id in &ids {
                print!("{}", render(&status_of(&data, id).await?));
            }
            println!("new posts are narrated by `lector serve` (conversions already asked for resume there)");
        }
        Command::Pause { feed_id } => {
            let command = FeedCommand::Pause { reason: format!("paused by {BY}"), by: BY.into() };
            report(change(&data, &index, &clock, &feed_id, command).await?, "paused", &feed_id);
        }
        Command::Resume { feed_id } => {
            let command = FeedCommand::Resume { by: BY.into(), at: clock.now() };
            report(change(&data, &index, &clock, &feed_id, command).await?, "resumed", &feed_id);
        }
        Command::Unsubscribe { feed_id } => {
            let command = FeedCommand::Unsubscribe { by: BY.into() };
            report(change(&data, &index, &clock, &feed_id, command).await?, "unsubscribed", &feed_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(changed: bool, what: &str, id: &FeedId) {
    if changed {
        println!("{what}: {id}");
    } else {
        println!("already {what}: {id}");
    }
}

/// Run `command` on the subscription's stream and bring the list up to date; whether
/// anything changed.
async fn change(
    data: &DataDir,
    index: &SqliteFeedIndex,
    clock: &dyn Clock,
    id: &FeedId,
    command: FeedCommand,
) -> anyhow::Result<bool> {
    let meta = EventMeta { occurred_at: clock.now(), correlation_id: id.to_string(), causation_id: None };
    let done =
        execute_feed(&data.events, id, command, &meta).await.map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
    index.put(&status_of(data, id).await?).await.context("updating the list of subscriptions")?;
    Ok(!done.appended.is_empty())
}

async fn status_of(data: &DataDir, id: &FeedId) -> anyhow::Result<FeedStatus> {
    let events = data.events.read_stream(&id.stream(), 0).await.context("reading the stream")?;
    FeedStatus::fold(&events)
        .with_context(|| format!("folding {id}"))?
        .with_context(|| format!("no subscription {id} in {}", data.root.display()))
}

/// A subscription as aligned lines for a terminal.
pub fn render(s: &FeedStatus) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<14} {v}\n"));
    line("feed", s.feed_id.to_string());
    line("url", s.url.to_string());
    if let Some(title) = &s.title {
        line("title", title.clone());
    }
    let state = match (&s.state, &s.paused_reason) {
        (FeedState::Paused, Some(reason)) => format!("paused ({reason})"),
        (state, _) => state.as_str().to_owned(),
    };
    line("state", state);
    line("voice", format!("{} ({})", s.voice, s.engine));
    line(
        "narrates",
        format!(
            "{}{}",
            if s.auto_convert { "new posts" } else { "nothing by itself" },
            if s.regenerate_on_edit { ", revises edited ones" } else { "" }
        ),
    );
    if let Some(at) = s.last_poll_at {
        let code = s.last_status.map(|c| format!(" (HTTP {c})")).unwrap_or_default();
        line("last poll", format!("{}{code}", at.to_rfc3339()));
    }
    if s.state.is_polled() {
        line(
            "next poll",
            format!("{} ({:?})", s.next_poll_at.to_rfc3339(), s.next_poll_reason).to_lowercase(),
        );
    }
    if let Some(e) = &s.last_error {
        line("last error", format!("{}: {} ({} in a row)", e.error, e.cause, s.consecutive_failures));
    }
    line("posts seen", s.posts_seen.to_string());
    line("conversions", s.conversions_requested.to_string());
    if let Some(hub) = &s.hub {
        line("websub hub", hub.to_string());
    }
    out
}
