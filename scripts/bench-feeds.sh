#!/usr/bin/env bash
# Feed parsing speed: Lector's parse_feed (feed-rs and the layers around it) against Python's
# feedparser on the same feed files, in the same script, printed as a ratio. Speed is not a
# target any more (a feed is read once per poll, every 15 minutes or so): this says what a
# read costs. Installs feedparser into .tools/venv (idempotently).
#
#   scripts/bench-feeds.sh [FEED_FILE...]     (default: three corpus feeds, 0.15 to 1.6 MB)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/venv"
FEEDPARSER_SPEC="feedparser>=6,<7"
cd "$ROOT"

if [[ $# -gt 0 ]]; then
    FILES=("$@")
else
    FILES=(testdata/corpus/feeds/giantbomb-podcast.rss testdata/corpus/feeds/guardian.rss testdata/corpus/feeds/many-links.rss)
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "bench-feeds.sh: python3 is needed for the feedparser baseline (apt-get install -y python3 python3-venv)" >&2
    exit 1
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "bench-feeds.sh: creating $VENV" >&2
    python3 -m venv "$VENV" || { echo "bench-feeds.sh: python3 -m venv failed (apt-get install -y python3-venv)" >&2; exit 1; }
fi
if ! "$VENV/bin/python" -c 'import feedparser' 2>/dev/null; then
    echo "bench-feeds.sh: installing $FEEDPARSER_SPEC into $VENV" >&2
    "$VENV/bin/pip" install --quiet "$FEEDPARSER_SPEC" >&2 || { echo "bench-feeds.sh: pip install $FEEDPARSER_SPEC failed; is PyPI reachable?" >&2; exit 1; }
fi

# Each side measures wall time and its own CPU time per parse, over at least 3 s (and 3 runs)
# per file, in three alternating rounds (feedparser, Lector, feedparser, ...); each side's best
# round counts. The ratio is taken on CPU time: on a machine shared with other jobs the wall
# clock of whichever side ran during a busier moment is slowed, its CPU time much less, and
# alternating rounds give both sides the same chances.
ABS=()
for f in "${FILES[@]}"; do ABS+=("$(realpath "$f")"); done
cargo bench -q -p lector-pipeline --bench pipeline --no-run 2>/dev/null

"$VENV/bin/python" - "${ABS[@]}" <<'PY'
import subprocess, sys, time, feedparser

ROUNDS = 3
paths = sys.argv[1:]

def feedparser_round():
    out = {}
    for path in paths:
        data = open(path, "rb").read()
        feedparser.parse(data)
        runs, start, cpu = 0, time.perf_counter(), time.process_time()
        while runs < 3 or time.perf_counter() - start < 3.0:
            feedparser.parse(data)
            runs += 1
        out[path.rsplit("/", 1)[-1]] = ((time.perf_counter() - start) / runs, (time.process_time() - cpu) / runs)
    return out

def lector_round():
    text = subprocess.run(
        ["cargo", "bench", "-q", "-p", "lector-pipeline", "--bench", "pipeline", "--", "feeds", *paths],
        check=True, capture_output=True, text=True).stdout
    out = {}
    for line in text.splitlines():
        if not line.startswith("feed "):
            continue
        fields = dict(f.split("=", 1) for f in line.split()[1:])
        out[fields["file"]] = (float(fields["seconds_per_parse"]), float(fields["cpu_seconds_per_parse"]))
    return out

best = {"py": {}, "rs": {}}
for _ in range(ROUNDS):
    for side, run in (("py", feedparser_round), ("rs", lector_round)):
        for name, (wall, cpu) in run().items():
            w, c = best[side].get(name, (float("inf"), float("inf")))
            best[side][name] = (min(w, wall), min(c, cpu))

print(f"{'':24} {'':9} | {'Lector MB/s':26} | {'feedparser MB/s':26} | Lector ÷ feedparser (best of {ROUNDS} rounds)")
print(f"{'feed':24} {'bytes':>9} | {'CPU':>12} {'wall':>13} | {'CPU':>12} {'wall':>13} | {'CPU':>8} {'wall':>8}")
for path in paths:
    name = path.rsplit("/", 1)[-1]
    if name not in best["rs"]:
        sys.exit(f"bench-feeds.sh: no Lector figure for {name}")
    size = len(open(path, "rb").read())
    (pw, pc), (rw, rc) = best["py"][name], best["rs"][name]
    print(f"{name:24} {size:9d} | {size/1e6/rc:12.1f} {size/1e6/rw:13.1f} | {size/1e6/pc:12.2f} "
          f"{size/1e6/pw:13.2f} | {pc/rc:7.0f}x {pw/rw:7.0f}x")
PY
