#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers and evaluators that read what users and servers send:
# the feed reader, the article extractor, narration and the chunker, the JSONPath and
# intrinsic-function evaluators, and the HTTP API's request bodies (fuzz/fuzz_targets, each
# checking what fuzz/oracles.rs says). Not part of the test command: a run takes minutes.
#
#   scripts/fuzz.sh                      every target, 60 s each
#   scripts/fuzz.sh feed article         some targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh     longer
#
# With the nightly toolchain it runs `cargo fuzz` (libFuzzer; installed into .tools/cargo-fuzz
# when missing); without it, `cargo afl` (AFL++, installed into .tools/cargo-afl). The corpus
# lives in fuzz/corpus/<target>: the repository keeps its seeds (seed-*), what a run adds stays
# local (fuzz/.gitignore). An input that
# crashes a target, or runs longer than 10 s, is copied to fuzz/regressions/<target>/, which
# `tests/fuzz_regressions.rs` replays on every test run; the script then fails, naming it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
ALL=(feed article narration jsonpath intrinsic api_body)
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=("${ALL[@]}")
fi
for t in "${targets[@]}"; do
    if [[ ! -f "fuzz_targets/$t.rs" ]]; then
        echo "fuzz.sh: no target '$t' (the targets are ${ALL[*]})" >&2
        exit 2
    fi
done
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$ROOT/fuzz/target}"

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    engine=libfuzzer
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        export PATH="$ROOT/.tools/cargo-fuzz/bin:$PATH"
        if ! command -v cargo-fuzz >/dev/null 2>&1; then
            echo "fuzz.sh: installing cargo-fuzz into .tools/cargo-fuzz" >&2
            cargo install --locked --root "$ROOT/.tools/cargo-fuzz" cargo-fuzz
        fi
    fi
else
    engine=afl
    if ! command -v cargo-afl >/dev/null 2>&1; then
        export PATH="$ROOT/.tools/cargo-afl/bin:$PATH"
        if ! command -v cargo-afl >/dev/null 2>&1; then
            echo "fuzz.sh: no nightly toolchain; installing cargo-afl into .tools/cargo-afl" >&2
            cargo install --locked --root "$ROOT/.tools/cargo-afl" cargo-afl
        fi
    fi
fi
echo "fuzz.sh: $engine, ${SECONDS_EACH} s per target: ${targets[*]}" >&2

found=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "regressions/$t" "artifacts/$t"
    before=$(find "corpus/$t" -type f | wc -l)
    started=$(date +%s)
    status=0
    if [[ $engine == libfuzzer ]]; then
        # No sanitizer: the project's code is safe Rust, and a panic, an overflow (debug
        # assertions are on) or a slow input is what is looked for. -timeout: an input that
        # takes longer is a finding (a page or feed that holds a step).
        cargo +nightly fuzz run --release --debug-assertions --sanitizer none "$t" "corpus/$t" -- \
            -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
            -print_final_stats=1 -artifact_prefix="artifacts/$t/" 2>"artifacts/$t/log" || status=$?
    else
        cargo afl build --release --no-default-features --features afl --bin "$t"
        AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
            cargo afl fuzz -i "corpus/$t" -o "artifacts/$t/afl" -V "$SECONDS_EACH" -t 10000 \
            "$CARGO_TARGET_DIR/release/$t" >"artifacts/$t/log" 2>&1 || status=$?
        # AFL keeps what it learnt in its own folder: the new inputs join the corpus.
        if [[ -d "artifacts/$t/afl/default/queue" ]]; then
            for q in "artifacts/$t/afl/default/queue"/id:*; do
                [[ -f $q ]] && cp "$q" "corpus/$t/$(sha1sum "$q" | cut -c1-40)"
            done
        fi
        for c in "artifacts/$t/afl/default/crashes"/id:* "artifacts/$t/afl/default/hangs"/id:*; do
            [[ -f $c ]] && cp "$c" "artifacts/$t/crash-$(sha1sum "$c" | cut -c1-40)"
        done
    fi
    after=$(find "corpus/$t" -type f | wc -l)
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "artifacts/$t/log" | grep -Eo '[0-9]+$' || true)
    echo "fuzz.sh: $t: $(($(date +%s) - started)) s, ${runs:-?} runs, corpus $before -> $after inputs" >&2
    for a in "artifacts/$t"/crash-* "artifacts/$t"/timeout-* "artifacts/$t"/oom-*; do
        [[ -f $a ]] || continue
        cp "$a" "regressions/$t/"
        found+=("fuzz/regressions/$t/$(basename "$a")")
    done
    if [[ $status -ne 0 && ${#found[@]} -eq 0 ]]; then
        echo "fuzz.sh: $t stopped with status $status and no finding; its log:" >&2
        tail -n 30 "artifacts/$t/log" >&2
        exit "$status"
    fi
done

if [[ ${#found[@]} -gt 0 ]]; then
    echo "fuzz.sh: findings, now regression tests (tests/fuzz_regressions.rs):" >&2
    printf '  %s\n' "${found[@]}" >&2
    exit 1
fi
echo "fuzz.sh: no finding" >&2
