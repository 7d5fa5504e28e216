//! `lector projections`: rebuild the list projection from the log, or check it against a fresh
//! fold of the log.

use std::process::ExitCode;

use lector_core::index::{check, rebuild};
use lector_local::index::SqliteConversionIndex;

use crate::data::{DataArgs, DataDir, runtime};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Drop the list of conversions and fold it again from the event log.
    Rebuild {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Fold the log afresh and compare it with the stored list; exit 1 when they differ.
    Check {
        #[command(flatten)]
        data: DataArgs,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match command {
        Command::Rebuild { data } => {
            let data = DataDir::open_existing(&data.dir)?;
            let index = SqliteConversionIndex::new(data.db.clone());
            let read = rt.block_on(rebuild(&index, &data.events))?;
            let diff = rt.block_on(check(&index, &data.events))?;
            println!("rebuilt the conversion list from {read} events");
            anyhow::ensure!(diff.is_empty(), "the rebuilt list differs from the log: {diff:?}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { data } => {
            let data = DataDir::open_existing(&data.dir)?;
            let index = SqliteConversionIndex::new(data.db.clone());
            let diff = rt.block_on(check(&index, &data.events))?;
            if diff.is_empty() {
                println!("the conversion list matches the log");
                return Ok(ExitCode::SUCCESS);
            }
            for (what, ids) in
                [("missing", &diff.missing), ("not in the log", &diff.extra), ("different", &diff.different)]
            {
                for id in ids {
                    println!("{what}: {id}");
                }
            }
            eprintln!("the conversion list differs from the log; `lector projections rebuild` rebuilds it");
            Ok(ExitCode::FAILURE)
        }
    }
}
