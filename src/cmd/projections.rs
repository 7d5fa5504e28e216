//! `lector projections`: rebuild the list projection from the log, or check it against a fresh
//! fold of the log, on the local data folder or, with `--aws`, on the deployed stack's tables.

use std::process::ExitCode;

use lector_core::EventStore;
use lector_core::index::{ConversionIndex, IndexDiff, check, rebuild};
use lector_local::index::SqliteConversionIndex;

use crate::aws_ops::StackTables;
use crate::data::{DataArgs, DataDir, runtime};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Drop the list of conversions and fold it again from the event log.
    Rebuild {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        stack: StackTables,
        /// With --aws: act. The deployed list is emptied first and lists only what has been
        /// folded again until the rebuild ends, so without --yes nothing changes.
        #[arg(long, requires = "aws")]
        yes: bool,
    },
    /// Fold the log afresh and compare it with the stored list; exit 1 when they differ.
    Check {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        stack: StackTables,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match command {
        #[cfg(not(feature = "aws"))]
        Command::Rebuild { stack, .. } | Command::Check { stack, .. } if stack.aws => {
            Err(crate::aws_ops::without_aws())
        }
        #[cfg(feature = "aws")]
        Command::Rebuild { stack, yes, .. } if stack.aws => rt.block_on(async {
            let ports = stack.connect().await?;
            if !yes {
                println!(
                    "would empty the list table {} and fold it again from the event log {}; \
                     add --yes to rebuild it",
                    ports.index.table(),
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
            Ok(ExitCode::SUCCESS)
        }),
        Command::Rebuild { data, .. } => {
            let data = DataDir::open_existing(&data.dir)?;
            let index = SqliteConversionIndex::new(data.db.clone());
            let read = rt.block_on(rebuild(&index, &data.events))?;
            let diff = rt.block_on(check(&index, &data.events))?;
            println!("rebuilt the conversion list from {read} events");
            anyhow::ensure!(diff.is_empty(), "the rebuilt list differs from the log: {diff:?}");
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "aws")]
        Command::Check { stack, .. } if stack.aws => rt.block_on(async {
            let ports = stack.connect().await?;
            report(&ports.index, &*ports.events, "lector projections rebuild --aws --yes").await
        }),
        Command::Check { data, .. } => {
            let data = DataDir::open_existing(&data.dir)?;
            let index = SqliteConversionIndex::new(data.db.clone());
            rt.block_on(report(&index, &data.events, "lector projections rebuild"))
        }
    }
}

/// Each conversion the list gets wrong, a line each.
fn print_diff(diff: &IndexDiff) {
    for (what, ids) in
        [("missing", &diff.missing), ("not in the log", &diff.extra), ("different", &diff.different)]
    {
        for id in ids {
            println!("{what}: {id}");
        }
    }
}

/// Print how the list differs from the log, and `rebuild`, the command that rebuilds it; exit 1
/// when it does.
async fn report(
    index: &dyn ConversionIndex,
    events: &dyn EventStore,
    rebuild: &str,
) -> anyhow::Result<ExitCode> {
    let diff = check(index, events).await?;
    if diff.is_empty() {
        println!("the conversion list matches the log");
        return Ok(ExitCode::SUCCESS);
    }
    print_diff(&diff);
    eprintln!("the conversion list differs from the log; `{rebuild}` rebuilds it");
    Ok(ExitCode::FAILURE)
}
