#!/usr/bin/env bash
# Feed parsing speed: Lector's reader against Python's feedparser on the same feed files, in
# the same script, printed as a ratio. Installs feedparser into .tools/venv (idempotently).
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

# Python: mean seconds per parse over at least 2 s (and 3 runs) per file, as Lector's bench does.
PY_OUT="$("$VENV/bin/python" - "${FILES[@]}" <<'PY'
import sys, time, feedparser
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    feedparser.parse(data)
    runs, start = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - start < 2.0:
        d = feedparser.parse(data)
        runs += 1
    per = (time.perf_counter() - start) / runs
    print(f"{path.rsplit('/', 1)[-1]} {len(data)} {per:.6f} {len(d.entries)}")
PY
)"

ABS=()
for f in "${FILES[@]}"; do ABS+=("$(realpath "$f")"); done
RS_OUT="$(cargo bench -q -p lector-pipeline --bench pipeline -- feeds "${ABS[@]}" 2>/dev/null | grep '^feed ')"

printf '%-26s %10s %14s %14s %8s\n' "feed" "bytes" "lector MB/s" "feedparser MB/s" "ratio"
while read -r name bytes py_per entries; do
    rs_per="$(grep "file=$name " <<<"$RS_OUT" | sed -n 's/.*seconds_per_parse=\([0-9.]*\).*/\1/p')"
    if [[ -z "$rs_per" ]]; then
        echo "bench-feeds.sh: no Lector figure for $name" >&2
        exit 1
    fi
    awk -v n="$name" -v b="$bytes" -v p="$py_per" -v r="$rs_per" 'BEGIN {
        printf "%-26s %10d %14.1f %14.2f %7.0fx\n", n, b, b/1e6/r, b/1e6/p, p/r }'
done <<<"$PY_OUT"
