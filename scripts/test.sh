#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (idempotently, into the
# ignored .tools/ folder, or from Debian's packages when run as root), then checks formatting,
# lints, the published schemas, and runs every test of the workspace.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    skip the install step (tools already there)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# One target folder for every build of the workspace, inside the clone: tests read files
# through paths compiled into them (CARGO_MANIFEST_DIR), so two clones must not share one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() {
    printf '\n==> %s\n' "$*" >&2
    STEP_STARTED=$SECONDS
}
done_step() {
    printf '    (%ss)\n' "$((SECONDS - STEP_STARTED))" >&2
}

if [[ "${1:-}" != "--quick" ]]; then
    step "installing what the tests need"
    scripts/tools.sh
    done_step
fi

step "cargo fmt --check"
cargo fmt --all -- --check
done_step

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
done_step

step "schemas are up to date"
cargo run --quiet -- schemas --check
done_step

step "deploy checks: cfn-lint, sam validate --lint, asl-validator"
scripts/deploy-checks.sh
done_step

step "tests"
cargo test --workspace --quiet
done_step

printf '\nall checks passed\n' >&2
