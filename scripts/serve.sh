#!/usr/bin/env bash
# Run Lector on this machine: the API, the web page, the workflow and the event log in one
# process, with the espeak-ng voice. Installs espeak-ng when it is missing (as root, from
# Debian's packages) or says exactly what to run. Extra arguments go to `lector serve`
# (for example --addr 0.0.0.0:8080 with LECTOR_API_TOKEN set, or --data DIR).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

if ! command -v cargo >/dev/null 2>&1; then
    echo "serve.sh: Rust is missing: install it from https://rustup.rs (then open a new shell)" >&2
    exit 1
fi
if ! command -v espeak-ng >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "serve.sh: installing espeak-ng (the local voice)" >&2
        apt-get install -y espeak-ng >/dev/null || { apt-get update >/dev/null && apt-get install -y espeak-ng >/dev/null; }
    else
        echo "serve.sh: espeak-ng (the local voice) is missing: sudo apt-get install -y espeak-ng" >&2
        exit 1
    fi
fi
# The Piper neural voice is offered when `scripts/tools.sh piper` installed it (from the
# repository's root, where `lector serve` looks by default); espeak-ng stays the default engine.
if [[ -f .tools/piper/lib/libonnxruntime.so ]] && compgen -G ".tools/piper/voices/*.onnx" >/dev/null; then
    echo "serve.sh: the Piper neural voice is installed and offered (engine piper); espeak-ng stays the default" >&2
else
    echo "serve.sh: for a natural neural voice, install Piper once: scripts/tools.sh piper" >&2
fi
# The `local` profile (Cargo.toml): optimised for speed; `release` is the Lambda functions' profile.
# Without the default `aws` feature (the operators' --aws commands, --engine polly): the AWS SDK is most of a
# clean build's time and the local system never calls it.
if [[ ! -x "$CARGO_TARGET_DIR/local/lector" ]]; then
    echo "serve.sh: building lector (the first build takes a few minutes; later ones seconds)" >&2
fi
cargo build --profile local --no-default-features --quiet --bin lector
exec "$CARGO_TARGET_DIR/local/lector" serve "$@"
