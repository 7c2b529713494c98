#!/usr/bin/env bash
# One command for Tailor's retrieval comparison: builds the pinned Python venv if needed, writes the
# encoder texts, runs `cargo bench --bench retrieval` and `baselines.py` on the same inputs, and prints
# the table and ratios from report.py. Everything it writes goes under target/bench-compare/.
#
#   bash benches/compare/run.sh [--quick] [--baselines-only] [--rounds N]
#
# --rounds N: dense top-k is measured in N rounds (default 3), each Tailor's then the baselines'
# searches, so that every round's roofline and fractions come from one stretch of time.
#
# Environment: TAILOR_BENCH_VENV (venv path, default ~/.cache/tailor/bench-venv),
#              BEIR (BEIR folder, default ../shared/data/scifact relative to the repo root).
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

QUICK=0
BASELINES_ONLY=0
ROUNDS=3
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --baselines-only) BASELINES_ONLY=1 ;;
        --rounds)
            [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { usage >&2; die "--rounds needs a whole number of at least 1"; }
            ROUNDS=$2
            shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

VENV="${TAILOR_BENCH_VENV:-$HOME/.cache/tailor/bench-venv}"
BEIR="${BEIR:-../shared/data/scifact}"
OUT="target/bench-compare"
BATCH=32
QUERIES=16
K=10
if [[ $QUICK == 1 ]]; then
    TEXTS=256
    ITEMS=100000
else
    TEXTS=2000
    ITEMS=1000000
fi

for f in corpus.jsonl queries.jsonl; do
    [[ -f "$BEIR/$f" ]] || die "BEIR folder '$BEIR' has no $f (set BEIR=/path/to/scifact)"
done
ensure_venv "$VENV" "$HERE/requirements.txt" "torch pulls its CUDA libraries: about 6 GB, a few minutes"
PY="$VENV/bin/python"

mkdir -p "$OUT"
TEXTS_FILE="$OUT/texts-$TEXTS.jsonl"
say "writing $TEXTS texts from $BEIR/corpus.jsonl to $TEXTS_FILE"
"$PY" - "$BEIR/corpus.jsonl" "$TEXTS" "$TEXTS_FILE" <<'PY'
import json, sys
corpus, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
texts = []
with open(corpus, encoding="utf-8") as f:
    for line in f:
        if len(texts) == n:
            break
        if line.strip():
            d = json.loads(line)
            texts.append(f"{d.get('title', '')} {d.get('text', '')}")
if len(texts) < n:
    sys.exit(f"error: {corpus} has only {len(texts)} documents, {n} wanted")
with open(out, "w", encoding="utf-8") as f:
    for t in texts:
        f.write(json.dumps(t) + "\n")
PY

ARGS=(--texts "$TEXTS_FILE" --beir "$BEIR" --batch "$BATCH" --items "$ITEMS" --queries "$QUERIES" --k "$K")

# Each JSON is written to a temporary file and moved into place only when its producer succeeded,
# so a failed run never leaves a stale or truncated result behind for report.py.
if [[ $BASELINES_ONLY == 0 ]]; then
    say "running cargo bench -j2 --bench retrieval -- ${ARGS[*]}"
    cargo bench -j2 --bench retrieval -- "${ARGS[@]}" > "$OUT/tailor.json.tmp" \
        || { rm -f "$OUT/tailor.json.tmp"; die "cargo bench --bench retrieval failed; see its output above"; }
    mv "$OUT/tailor.json.tmp" "$OUT/tailor.json"
fi

say "running baselines.py ${ARGS[*]}"
"$PY" "$HERE/baselines.py" "${ARGS[@]}" > "$OUT/baselines.json.tmp" \
    || { rm -f "$OUT/baselines.json.tmp"; die "baselines.py failed; see its output above"; }
mv "$OUT/baselines.json.tmp" "$OUT/baselines.json"

if [[ $BASELINES_ONLY == 1 ]]; then
    say "baselines only: $OUT/baselines.json"
    cat "$OUT/baselines.json"
    exit 0
fi

# Round 1 is the dense part of the two runs above; each further round runs only dense top-k, Tailor's
# then the baselines', back to back.
rm -f "$OUT"/tailor-dense-*.json "$OUT"/baselines-dense-*.json
ROUND_ARGS=()
for ((round = 2; round <= ROUNDS; round++)); do
    say "dense round $round of $ROUNDS: Tailor's searches, then the baselines'"
    t="$OUT/tailor-dense-$round.json"
    b="$OUT/baselines-dense-$round.json"
    cargo bench -j2 --bench retrieval -- "${ARGS[@]}" --skip encoder,bm25 > "$t.tmp" \
        || { rm -f "$t.tmp"; die "cargo bench --bench retrieval (dense round $round) failed"; }
    mv "$t.tmp" "$t"
    "$PY" "$HERE/baselines.py" "${ARGS[@]}" --skip encoder,bm25 > "$b.tmp" \
        || { rm -f "$b.tmp"; die "baselines.py (dense round $round) failed"; }
    mv "$b.tmp" "$b"
    ROUND_ARGS+=(--dense-round "$t" "$b")
done

"$PY" "$HERE/report.py" "$OUT/tailor.json" "$OUT/baselines.json" "${ROUND_ARGS[@]}" --out "$OUT/ratios.json"
say "saved $OUT/tailor.json, $OUT/baselines.json, the dense rounds and $OUT/ratios.json"
