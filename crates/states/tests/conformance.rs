//! Runs the AWS-recorded conformance cases of `testdata/asl-conformance/cases` and fails when
//! the JSONPath pass count falls below the ratchet kept in `conformance-ratchet.json`.

use std::path::PathBuf;

use anyhow::Context;
use lector_states::conformance::{self, Outcome, RunOptions};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(serde::Deserialize)]
struct Ratchet {
    jsonpath_passed: usize,
    clock_start: chrono::DateTime<chrono::Utc>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonpath_conformance_does_not_fall_below_the_ratchet() -> anyhow::Result<()> {
    let ratchet_path = crate_dir().join("conformance-ratchet.json");
    let ratchet: Ratchet = serde_json::from_str(
        &std::fs::read_to_string(&ratchet_path)
            .with_context(|| format!("reading {}", ratchet_path.display()))?,
    )?;
    let opts = RunOptions { clock_start: Some(ratchet.clock_start), ..RunOptions::default() };
    let report =
        conformance::run_dir(&crate_dir().join("../../testdata/asl-conformance/cases"), &opts).await?;

    let mut failures = Vec::new();
    for r in &report.results {
        if let Outcome::Failed(diffs) = &r.outcome {
            failures.push(format!("{}\n    {}", r.name, diffs.join("\n    ")));
        }
        if let Outcome::Skipped(_) = &r.outcome {
            assert_eq!(r.query_language, "JSONata", "only JSONata cases may be skipped: {}", r.name);
        }
    }
    let jsonpath_passed = report
        .results
        .iter()
        .filter(|r| r.query_language == "JSONPath" && r.outcome == Outcome::Passed)
        .count();
    eprintln!("{}\n{}", failures.join("\n"), report.summary());
    assert!(
        jsonpath_passed >= ratchet.jsonpath_passed,
        "{jsonpath_passed} JSONPath cases pass, fewer than the ratchet's {} ({}):\n{}",
        ratchet.jsonpath_passed,
        ratchet_path.display(),
        failures.join("\n")
    );
    if jsonpath_passed > ratchet.jsonpath_passed {
        eprintln!(
            "{jsonpath_passed} JSONPath cases pass: raise jsonpath_passed in {} to keep them passing",
            ratchet_path.display()
        );
    }
    Ok(())
}
