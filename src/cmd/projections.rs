//! `lector projections`: rebuild the read models from the log, or check them against a fresh
//! fold of the log, on the local data folder or, with `--aws`, on the deployed stack's tables.
//! Both lists are covered, one after the other: the list of conversions and the list of
//! subscriptions.

use std::process::ExitCode;

use std::fmt::Display;

use lector_core::EventStore;
use lector_core::feed::index::{FeedIndex, check_feeds, rebuild_feeds};
use lector_core::index::{ConversionIndex, IndexDiff, check, rebuild};
use lector_local::feed_index::SqliteFeedIndex;
use lector_local::index::SqliteConversionIndex;

use crate::aws_ops::{StackFeedTable, StackTables};
use crate::data::{DataArgs, DataDir, runtime};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Drop the list of conversions and the list of subscriptions and fold them again from the
    /// event log.
    Rebuild {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        stack: StackTables,
        #[command(flatten)]
        feeds: StackFeedTable,
        /// With --aws: act. The deployed list is emptied first and lists only what has been
        /// folded again until the rebuild ends, so without --yes nothing changes.
        #[arg(long, requires = "aws")]
        yes: bool,
    },
    /// Fold the log afresh and compare it with the stored lists; exit 1 when either differs.
    Check {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        stack: StackTables,
        #[command(flatten)]
        feeds: StackFeedTable,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match command {
        Command::Rebuild { stack, feeds, yes, .. } if stack.aws => rt.block_on(async {
            let ports = stack.connect().await?;
            let feeds = feeds.connect().await?;
            if !yes {
                println!(
                    "would empty the list table {} and the feed table {} and fold them again from \
                     the event log {}; add --yes to rebuild them",
                    ports.index.table(),
                    feeds.table(),
                    ports.events.table()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let read = rebuild(&ports.index, &*ports.events).await?;
            println!("rebuilt the conversion list from {read} events");
            // The deployed projector keeps folding new events meanwhile: a difference now is
            // one it has not caught up with yet, not a failed rebuild.
            let diff = check(&ports.index, &*ports.events).await?;
            if !diff.is_empty() {
                print_diff(&diff);
                eprintln!(
                    "the list moved on while it was rebuilt; `lector projections check --aws` in a \
                     moment should find it caught up"
                );
            }
            let read = rebuild_feeds(&feeds, &*ports.events).await?;
            println!("rebuilt the list of subscriptions from {read} events");
            let diff = check_feeds(&feeds, &*ports.events).await?;
            if !diff.is_empty() {
                print_diff(&diff);
                eprintln!(
                    "the list of subscriptions moved on while it was rebuilt (every poll moves \
                     it); `lector projections check --aws` in a moment should find it caught up"
                );
            }
            Ok(ExitCode::SUCCESS)
        }),
        Command::Rebuild { data, .. } => {
            let data = DataDir::open_existing(&data.dir)?;
            let index = SqliteConversionIndex::new(data.db.clone());
            let read = rt.block_on(rebuild(&index, &data.events))?;
            let diff = rt.block_on(check(&index, &data.events))?;
            println!("rebuilt the conversion list from {read} events");
            anyhow::ensure!(diff.is_empty(), "the rebuilt list differs from the log: {diff:?}");
            let feeds = SqliteFeedIndex::new(data.db.clone());
            let read = rt.block_on(rebuild_feeds(&feeds, &data.events))?;
            let diff = rt.block_on(check_feeds(&feeds, &data.events))?;
            println!("rebuilt the list of subscriptions from {read} events");
            anyhow::ensure!(
                diff.is_empty(),
                "the rebuilt list of subscriptions differs from the log: {diff:?}"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { stack, feeds, .. } if stack.aws => rt.block_on(async {
            let ports = stack.connect().await?;
            let feeds = feeds.connect().await?;
            let rebuild = "lector projections rebuild --aws --yes";
            let conversions = report(&ports.index, &*ports.events, rebuild).await?;
            let subscriptions = report_feeds(&feeds, &*ports.events, rebuild).await?;
            Ok(worst(conversions, subscriptions))
        }),
        Command::Check { data, .. } => {
            let data = DataDir::open_existing(&data.dir)?;
            let index = SqliteConversionIndex::new(data.db.clone());
            let feeds = SqliteFeedIndex::new(data.db.clone());
            rt.block_on(async {
                let conversions = report(&index, &data.events, "lector projections rebuild").await?;
                let subscriptions = report_feeds(&feeds, &data.events, "lector projections rebuild").await?;
                Ok(worst(conversions, subscriptions))
            })
        }
    }
}

/// Success when both lists match the log.
fn worst(conversions: bool, subscriptions: bool) -> ExitCode {
    if conversions && subscriptions { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Each conversion or feed a list gets wrong, a line each.
fn print_diff<K: Display>(diff: &IndexDiff<K>) {
    for (what, ids) in
        [("missing", &diff.missing), ("not in the log", &diff.extra), ("different", &diff.different)]
    {
        for id in ids {
            println!("{what}: {id}");
        }
    }
}

/// Print how the list differs from the log, and `rebuild`, the command that rebuilds it; false
/// when it does.
async fn report(index: &dyn ConversionIndex, events: &dyn EventStore, rebuild: &str) -> anyhow::Result<bool> {
    let diff = check(index, events).await?;
    if diff.is_empty() {
        println!("the conversion list matches the log");
        return Ok(true);
    }
    print_diff(&diff);
    eprintln!("the conversion list differs from the log; `{rebuild}` rebuilds it");
    Ok(false)
}

/// Print how the list of subscriptions differs from the log, and `rebuild`, the command that
/// rebuilds it; false when it does.
async fn report_feeds(feeds: &dyn FeedIndex, events: &dyn EventStore, rebuild: &str) -> anyhow::Result<bool> {
    let diff = check_feeds(feeds, events).await?;
    if diff.is_empty() {
        println!("the list of subscriptions matches the log");
        return Ok(true);
    }
    print_diff(&diff);
    eprintln!("the list of subscriptions differs from the log; `{rebuild}` rebuilds it");
    Ok(false)
}
