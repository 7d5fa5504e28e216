//! Every input the fuzzers found to crash or hang a target (`fuzz/regressions/<target>/`), and
//! the hand-made seeds of their corpus, replayed through the very checks the fuzz targets make
//! (`fuzz/oracles.rs`). `scripts/fuzz.sh` adds each new finding here.

#[path = "../fuzz/oracles.rs"]
#[allow(dead_code)]
mod oracles;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for (dir, only_seeds) in
        [(fuzz.join("regressions").join(target), false), (fuzz.join("corpus").join(target), true)]
    {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if path.is_file() && !name.starts_with('.') && (!only_seeds || name.starts_with("seed-")) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no inputs for {target}: the corpus seeds are missing");
    for file in files {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let replayed = std::panic::catch_unwind(|| check(&data));
        assert!(replayed.is_ok(), "{target} fails on {}", file.display());
    }
}

#[test]
fn feed_inputs_found_by_fuzzing_read_or_fail_by_name() {
    replay("feed", oracles::feed);
}

#[test]
fn article_inputs_found_by_fuzzing_extract_or_fail_by_name() {
    replay("article", oracles::article);
}

#[test]
fn narration_inputs_found_by_fuzzing_chunk_within_the_limits() {
    replay("narration", oracles::narration);
}

#[test]
fn jsonpath_inputs_found_by_fuzzing_evaluate_or_fail_by_name() {
    replay("jsonpath", oracles::jsonpath);
}

#[test]
fn intrinsic_inputs_found_by_fuzzing_evaluate_or_fail_by_name() {
    replay("intrinsic", oracles::intrinsic);
}

#[test]
fn api_bodies_found_by_fuzzing_get_a_named_answer() {
    replay("api_body", oracles::api_body);
}
