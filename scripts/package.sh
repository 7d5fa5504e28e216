#!/usr/bin/env bash
# Builds every Lambda function of template.yaml as a deployment does, offline: `sam build`
# (the beta rust-cargolambda build method: cargo-lambda, zig as the linker, arm64, release),
# zips each function's `bootstrap` the way `sam deploy` uploads it, and prints a table: function,
# bootstrap size, zip size and the ≤ 4 MiB target verdict, then the build and run times. A
# hello-world `lambda_runtime` function (crates/lambda/hello-lambda) is built the same way as the
# floor to compare against.
#
#   scripts/package.sh               install the tools when missing, sam build, the table
#   scripts/package.sh --no-build    the table of the last build only
#
# Not part of CI: a clean build of the nine functions takes many minutes on 2 cores
# (BENCHMARKS.md has the figures). Exits non-zero when a build fails or a function has no
# bootstrap; a function over the target is reported, not failed.
#
# CARGO_TARGET_DIR is honoured (default: target/ of the repository); the artefacts are in
# .aws-sam/build/<LogicalId>/bootstrap, the zips in .aws-sam/zips/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.tools/venv"
BUILD_DIR="$ROOT/.aws-sam/build"
ZIP_DIR="$ROOT/.aws-sam/zips"
TARGET_MIB=4
HELLO_MANIFEST="$ROOT/crates/lambda/hello-lambda/Cargo.toml"

build=1
case "${1:-}" in
    "") ;;
    --no-build) build=0 ;;
    -h | --help)
        sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "package.sh: unknown argument '$1' (try --help)" >&2
        exit 2
        ;;
esac

started=$(date +%s)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0
# sam wants a region to exist even for a build; nothing here talks to AWS.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

if [[ $build == 1 ]]; then
    "$ROOT/scripts/tools.sh" aws-sam-cli cargo-lambda rust-arm64
    echo "package.sh: sam build (cargo-lambda, arm64, release) into $BUILD_DIR; cargo target $CARGO_TARGET_DIR" >&2
    build_started=$(date +%s)
    # --no-cached: SAM's cache keys on each function's own folder and would keep a stale
    # bootstrap after a change in crates/; cargo's own incremental build is the cache.
    if ! sam build --beta-features --no-cached --template-file template.yaml --build-dir "$BUILD_DIR"; then
        echo "package.sh: sam build failed (see above)" >&2
        exit 1
    fi
    build_seconds=$(($(date +%s) - build_started))
    echo "package.sh: cargo lambda build --release --arm64 of the hello-world function" >&2
    if ! cargo lambda build --release --arm64 --manifest-path "$HELLO_MANIFEST"; then
        echo "package.sh: building crates/lambda/hello-lambda failed (see above)" >&2
        exit 1
    fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "package.sh: $VENV/bin/python is missing; run scripts/tools.sh aws-sam-cli" >&2
    exit 1
fi

# Each function of the template (logical id and binary) from SAM's own template parser, zipped
# by SAM's own zip function: the archive `sam deploy` uploads, byte for byte.
"$VENV/bin/python" - "$BUILD_DIR" "$ZIP_DIR" "$TARGET_MIB" "$CARGO_TARGET_DIR/lambda/hello-lambda/bootstrap" <<'PY'
import os, shutil, sys, tempfile
from samcli.yamlhelper import yaml_parse
from samcli.lib.package.utils import make_zip

build_dir, zip_dir, target_mib, hello = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
with open("template.yaml") as f:
    template = yaml_parse(f.read())

functions = []
for logical_id, resource in template["Resources"].items():
    if resource.get("Type") != "AWS::Serverless::Function":
        continue
    binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", logical_id)
    functions.append((binary, os.path.join(build_dir, logical_id, "bootstrap")))
functions.sort()
functions.append(("hello-lambda (floor)", hello))

os.makedirs(zip_dir, exist_ok=True)
mib = 1024 * 1024
missing = []
over = []
rows = []
for name, bootstrap in functions:
    if not os.path.isfile(bootstrap):
        missing.append(f"{name}: no {bootstrap}")
        continue
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy2(bootstrap, os.path.join(folder, "bootstrap"))
        archive = make_zip(os.path.join(zip_dir, name.split()[0]), folder)
    size, zipped = os.path.getsize(bootstrap), os.path.getsize(archive)
    verdict = "ok" if zipped <= target_mib * mib else "OVER"
    if verdict == "OVER":
        over.append(name)
    rows.append((name, size, zipped, verdict))

print(f"{'function':<22} {'bootstrap':>12} {'zip':>12}  target ≤ {target_mib:g} MiB zipped")
for name, size, zipped, verdict in rows:
    print(f"{name:<22} {size / mib:>8.2f} MiB {zipped / mib:>8.2f} MiB  {verdict}")
if over:
    print(f"over the target: {', '.join(over)}")
if missing:
    print("package.sh: functions without a built bootstrap:", file=sys.stderr)
    for line in missing:
        print(f"  - {line}", file=sys.stderr)
    sys.exit(1)
PY

if [[ $build == 1 ]]; then
    echo "sam build: ${build_seconds} s; package.sh: $(($(date +%s) - started)) s in all ($(nproc) cores)"
else
    echo "package.sh: $(($(date +%s) - started)) s"
fi
