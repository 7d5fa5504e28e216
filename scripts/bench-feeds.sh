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

# Each side measures wall time and its own CPU time per parse, over at least 3 s (and 3 runs)
# per file. The ratio is taken on CPU time: on a machine shared with other jobs the wall clock
# of whichever side ran during a busier moment is slowed, its CPU time much less.
PY_OUT="$("$VENV/bin/python" - "${FILES[@]}" <<'PY'
import sys, time, feedparser
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    feedparser.parse(data)
    runs, start, cpu = 0, time.perf_counter(), time.process_time()
    while runs < 3 or time.perf_counter() - start < 3.0:
        d = feedparser.parse(data)
        runs += 1
    per = (time.perf_counter() - start) / runs
    cpu_per = (time.process_time() - cpu) / runs
    print(f"{path.rsplit('/', 1)[-1]} {len(data)} {per:.6f} {cpu_per:.6f} {len(d.entries)}")
PY
)"

ABS=()
for f in "${FILES[@]}"; do ABS+=("$(realpath "$f")"); done
RS_OUT="$(cargo bench -q -p lector-pipeline --bench pipeline -- feeds "${ABS[@]}" 2>/dev/null | grep '^feed ')"

printf '%-24s %9s | %-26s | %-26s | %s\n' "" "" "Lector MB/s" "feedparser MB/s" "Lector ÷ feedparser"
printf '%-24s %9s | %12s %13s | %12s %13s | %8s %8s\n' "feed" "bytes" "CPU" "wall" "CPU" "wall" "CPU" "wall"
while read -r name bytes py_per py_cpu entries; do
    line="$(grep "file=$name " <<<"$RS_OUT")"
    rs_per="$(sed -n 's/.* seconds_per_parse=\([0-9.]*\).*/\1/p' <<<"$line")"
    rs_cpu="$(sed -n 's/.*cpu_seconds_per_parse=\([0-9.]*\).*/\1/p' <<<"$line")"
    if [[ -z "$rs_per" || -z "$rs_cpu" ]]; then
        echo "bench-feeds.sh: no Lector figure for $name" >&2
        exit 1
    fi
    awk -v n="$name" -v b="$bytes" -v p="$py_per" -v pc="$py_cpu" -v r="$rs_per" -v rc="$rs_cpu" 'BEGIN {
        printf "%-24s %9d | %12.1f %13.1f | %12.2f %13.2f | %7.0fx %7.0fx\n",
            n, b, b/1e6/rc, b/1e6/r, b/1e6/pc, b/1e6/p, pc/rc, p/r }'
done <<<"$PY_OUT"
