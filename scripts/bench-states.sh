#!/usr/bin/env bash
# Benchmarks the local Step Functions engine (crates/states) on the definitions in
# benchmarks/states/, against the npm engine aws-local-stepfunctions on the same files in the
# same run, and the per-transition cost of durability (the SQLite store against memory).
#
#   scripts/bench-states.sh            build, install the peer if needed, run both, print ratios
#
# The peer installs into .tools/states-peer (idempotent). On Node 20 it needs a
# Promise.withResolvers polyfill, which benchmarks/states/peer.mjs provides.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PEER_DIR="$ROOT/.tools/states-peer"
PEER_VERSION="3.0.0"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "bench-states: '$1' is needed and was not found" >&2; exit 1; }
}
need cargo
need node
need npm

install_peer() {
    local installed="$PEER_DIR/node_modules/aws-local-stepfunctions/package.json"
    if [[ -f "$installed" ]] && grep -q "\"version\": \"$PEER_VERSION\"" "$installed"; then
        return
    fi
    echo "==> installing aws-local-stepfunctions $PEER_VERSION into $PEER_DIR" >&2
    mkdir -p "$PEER_DIR"
    [[ -f "$PEER_DIR/package.json" ]] || echo '{"private": true}' > "$PEER_DIR/package.json"
    if ! npm install --prefix "$PEER_DIR" --no-audit --no-fund --loglevel=error "aws-local-stepfunctions@$PEER_VERSION" >&2; then
        echo "bench-states: npm could not install aws-local-stepfunctions@$PEER_VERSION" >&2
        exit 1
    fi
}

install_peer

echo "==> lector-states (cargo bench -p lector-states --bench transitions)" >&2
cargo bench --quiet -p lector-states --bench transitions | tee "$OUT/rust.txt" | grep -v '^RESULT' >&2
echo "==> aws-local-stepfunctions $PEER_VERSION (node $(node --version))" >&2
node benchmarks/states/peer.mjs "$PEER_DIR/node_modules" | tee "$OUT/peer.txt" | grep -v '^RESULT' >&2

node - "$OUT/rust.txt" "$OUT/peer.txt" <<'JS'
const fs = require('fs');
const read = (f) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)));
const ours = read(process.argv[2]);
const peer = read(process.argv[3]);
const by = (rows) => Object.fromEntries(rows.map((r) => [r.scenario, r]));
const o = by(ours);
const p = by(peer);
const pad = (s, n) => String(s).padStart(n);
console.log('\nlector-states against aws-local-stepfunctions (same definitions, same machine, same run)');
console.log(`${'scenario'.padEnd(22)} ${pad('ours/s', 12)} ${pad('peer/s', 12)} ${pad('ratio', 8)}`);
for (const s of Object.keys(p)) {
  if (!o[s]) continue;
  const r = o[s].transitions_per_second / p[s].transitions_per_second;
  console.log(`${s.padEnd(22)} ${pad(o[s].transitions_per_second.toFixed(0), 12)} ${pad(p[s].transitions_per_second.toFixed(0), 12)} ${pad(r.toFixed(1) + 'x', 8)}`);
}
console.log('\nthe cost of durability: the same runs on the SQLite store and in memory');
console.log(`${'scenario'.padEnd(22)} ${pad('memory µs', 10)} ${pad('sqlite µs', 10)} ${pad('+µs/transition', 15)} ${pad('ratio', 8)}`);
for (const s of Object.keys(o)) {
  if (!s.endsWith('/memory')) continue;
  const base = s.slice(0, -'/memory'.length);
  const q = o[`${base}/sqlite`];
  if (!q) continue;
  const m = 1e6 / o[s].transitions_per_second;
  const d = 1e6 / q.transitions_per_second;
  console.log(`${base.padEnd(22)} ${pad(m.toFixed(2), 10)} ${pad(d.toFixed(2), 10)} ${pad((d - m).toFixed(2), 15)} ${pad((d / m).toFixed(1) + 'x', 8)}`);
}
JS
