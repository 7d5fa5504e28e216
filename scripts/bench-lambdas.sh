#!/usr/bin/env bash
# The Lambda functions' sizes and init times, as BENCHMARKS.md reports them:
#   1. scripts/package.sh: sam build (cargo-lambda, arm64, release), the zips, the size table;
#   2. the same functions and the hello-world function (crates/lambda/hello-lambda) built again
#      by cargo-lambda with the same release settings for this machine's architecture, since an
#      arm64 binary does not run on an x86_64 machine;
#   3. the init-time benchmark (crates/lambda/examples/lambda_init.rs): each bootstrap spawned
#      against a local Runtime API, spawn → first GET /next, medians of alternating rounds; each
#      function's absolute time and its ratio to the hello-world function that builds the same
#      SDK clients with the same configuration (the init-ladder bench function given
#      LECTOR_INIT_CLIENTS; target ≤ 1.2×: Lector's own share), beside its ratio to the plain
#      hello-world function; and the init-ladder stopped after each step of init, which prices
#      the steps (JSON logs, SDK config, each SDK client).
#
#   scripts/bench-lambdas.sh                  all three
#   scripts/bench-lambdas.sh --no-package     2 and 3 only
#   ROUNDS=31 scripts/bench-lambdas.sh        more rounds (default 21, at least 15)
#
# Not part of CI: two release builds of every function take a long time on 2 cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$ROOT/.tools/venv/bin:$PATH"
ROUNDS="${ROUNDS:-21}"

package=1
case "${1:-}" in
    "") ;;
    --no-package) package=0 ;;
    -h | --help)
        sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "bench-lambdas.sh: unknown argument '$1' (try --help)" >&2
        exit 2
        ;;
esac

started=$(date +%s)
if [[ $package == 1 ]]; then
    "$ROOT/scripts/package.sh"
else
    "$ROOT/scripts/tools.sh" cargo-lambda
fi

arch="$(uname -m)"
case "$arch" in
    x86_64) target_flag=--x86-64 ;;
    aarch64 | arm64) target_flag=--arm64 ;;
    *)
        echo "bench-lambdas.sh: no Lambda architecture for a $arch machine" >&2
        exit 1
        ;;
esac
LAMBDA_DIR="$CARGO_TARGET_DIR/lambda-bench-$arch"

packages=()
for manifest in functions/*/Cargo.toml; do
    packages+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n1)")
done
functions=$((${#packages[@]} / 2))
packages+=(-p init-ladder)
echo "bench-lambdas.sh: cargo lambda build --release $target_flag of $functions functions and init-ladder into $LAMBDA_DIR" >&2
build_started=$(date +%s)
if ! cargo lambda build --release "$target_flag" --lambda-dir "$LAMBDA_DIR" "${packages[@]}"; then
    echo "bench-lambdas.sh: building the functions for $arch failed (see above)" >&2
    exit 1
fi
if ! cargo lambda build --release "$target_flag" --lambda-dir "$LAMBDA_DIR" \
    --manifest-path crates/lambda/hello-lambda/Cargo.toml; then
    echo "bench-lambdas.sh: building crates/lambda/hello-lambda for $arch failed (see above)" >&2
    exit 1
fi
echo "bench-lambdas.sh: $arch build: $(($(date +%s) - build_started)) s" >&2

cargo run --quiet -p lector-lambda --example lambda_init -- --dir "$LAMBDA_DIR" --rounds "$ROUNDS"
echo "bench-lambdas.sh: $(($(date +%s) - started)) s in all ($(nproc) cores)"
