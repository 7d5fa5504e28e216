#!/usr/bin/env bash
# Intelligibility, measured: each local engine narrates three real posts of the corpus
# (testdata/corpus/articles) through `lector convert`, an offline speech recogniser
# (PocketSphinx 5.1.1 from PyPI, whose wheel carries its US English model) transcribes the MP3,
# and the word error rate of the transcript against the post's text is printed per engine.
# A benchmark, not a test: the recogniser's own errors are in every figure, so compare the
# engines with each other, not with zero.
#
#   scripts/bench-wer.sh [ARTICLE...]     (default: ehow-1 buzzfeed-1 daringfireball-1)
#
# Needs: espeak-ng, mpg123 (apt-get install -y espeak-ng mpg123), python3 with venv, and the
# Piper voice (scripts/tools.sh piper).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
ARTICLES=("$@")
[[ ${#ARTICLES[@]} -gt 0 ]] || ARTICLES=(ehow-1 buzzfeed-1 daringfireball-1)
POCKETSPHINX_SPEC="pocketsphinx==5.1.1"
VENV="$ROOT/.tools/wer-venv"

for tool in espeak-ng mpg123 python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench-wer.sh: $tool is missing (apt-get install -y $tool)" >&2; exit 1; }
done
scripts/tools.sh piper
if [[ ! -x "$VENV/bin/python" ]] || ! grep -qx "$POCKETSPHINX_SPEC" "$VENV/.stamp" 2>/dev/null; then
    echo "bench-wer.sh: installing $POCKETSPHINX_SPEC into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$POCKETSPHINX_SPEC"
    echo "$POCKETSPHINX_SPEC" >"$VENV/.stamp"
fi
# LECTOR_BIN: a lector binary already built (otherwise the debug build is made here).
LECTOR="${LECTOR_BIN:-}"
if [[ -z "$LECTOR" ]]; then
    cargo build --quiet --bin lector
    LECTOR="$CARGO_TARGET_DIR/debug/lector"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export LECTOR_ONNXRUNTIME="$ROOT/.tools/piper/lib/libonnxruntime.so"
export LECTOR_VOICES="$ROOT/.tools/piper/voices"

for article in "${ARTICLES[@]}"; do
    source="$ROOT/testdata/corpus/articles/$article/source.html"
    mkdir -p "$WORK/$article"
    for engine in espeak piper; do
        "$LECTOR" convert "$source" --engine "$engine" --json --out "$WORK/$article/$engine" \
            --data "$WORK/$article/data-$engine" >"$WORK/$article/$engine.json"
        mp3="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["audio"])' "$WORK/$article/$engine.json")"
        mpg123 -q -m -r 16000 -w "$WORK/$article/$engine.wav" "$mp3"
    done
done

"$VENV/bin/python" - "$WORK" "${ARTICLES[@]}" <<'PY'
import glob, html, io, json, re, sys, wave
from pocketsphinx import Decoder, Segmenter

work, articles = sys.argv[1], sys.argv[2:]

def words(text):
    text = text.lower().replace("\u2019", "'")
    return re.findall(r"[a-z0-9']+", text)

def wer(ref, hyp):
    # Word-level Levenshtein distance over the reference length.
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / max(1, len(ref))

def transcribe(path):
    with wave.open(path, "rb") as w:
        pcm = w.readframes(w.getnframes())
    decoder = Decoder(samprate=16000)
    out = []
    for speech in Segmenter(sample_rate=16000).segment(io.BytesIO(pcm)):
        decoder.start_utt()
        decoder.process_raw(speech.pcm, full_utt=True)
        decoder.end_utt()
        if decoder.hyp() is not None:
            out.append(decoder.hyp().hypstr)
    return " ".join(out)

totals = {}
print(f"{'article':<14} {'words':>6} {'espeak-ng WER':>14} {'Piper WER':>10}")
for article in articles:
    # The reference is exactly what was spoken: the text of the units the conversion
    # synthesized (the same for both engines), in order.
    chunks = glob.glob(f"{work}/{article}/data-espeak/objects/work/*/*/chunks.json")
    spoken = " ".join(u["text"] for u in json.load(open(chunks[0]))["units"])
    ref = words(html.unescape(spoken))
    row = []
    for engine in ("espeak", "piper"):
        hyp = words(transcribe(f"{work}/{article}/{engine}.wav"))
        e = wer(ref, hyp)
        totals.setdefault(engine, []).append((e, len(ref)))
        row.append(e)
    print(f"{article:<14} {len(ref):>6} {row[0]:>14.1%} {row[1]:>10.1%}")
def pooled(engine):
    pairs = totals[engine]
    return sum(e * n for e, n in pairs) / sum(n for _, n in pairs)
print(f"{'all':<14} {sum(n for _, n in totals['espeak']):>6} {pooled('espeak'):>14.1%} {pooled('piper'):>10.1%}")
PY
