#!/usr/bin/env bash
# One command for the per-request overhead comparison with Haystack 2.x: builds the pinned Python
# venv if needed, then, --repeats times (default 3), runs the daemon bench's in-process baseline
# (the first time also writing its items and messages) and pipeline.py on the same data, and prints
# the table and ratios from report.py (medians over the repeats). Output: target/bench-haystack/.
#
#   bash benches/haystack/run.sh [--runs N] [--repeats K] [--haystack-only]
#
# Environment: TAILOR_HAYSTACK_VENV (venv path, default ~/.cache/tailor/haystack-venv).
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

RUNS=500
REPEATS=3
HAYSTACK_ONLY=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs)
            [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { usage >&2; die "--runs needs a positive number"; }
            RUNS="$2"
            shift
            ;;
        --repeats)
            [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { usage >&2; die "--repeats needs a positive number"; }
            REPEATS="$2"
            shift
            ;;
        --haystack-only) HAYSTACK_ONLY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

VENV="${TAILOR_HAYSTACK_VENV:-$HOME/.cache/tailor/haystack-venv}"
OUT="$ROOT/target/bench-haystack"
DATA="$OUT/data.json"

ensure_venv "$VENV" "$HERE/requirements.txt"
PY="$VENV/bin/python"

mkdir -p "$OUT"

# Each JSON is written to a temporary file and moved into place only when its producer succeeded,
# so a failed run never leaves a stale or truncated result behind for report.py. The two sides take
# turns, so that a slow spell of the machine does not fall on one side only.
rm -f "$OUT"/haystack-*.json
if [[ $HAYSTACK_ONLY == 0 ]]; then
    rm -f "$OUT"/tailor-*.json
else
    [[ -f "$DATA" ]] && compgen -G "$OUT/tailor-*.json" >/dev/null \
        || die "--haystack-only needs $DATA and $OUT/tailor-*.json from a full run"
fi
for ((r = 1; r <= REPEATS; r++)); do
    if [[ $HAYSTACK_ONLY == 0 ]]; then
        dump=()
        [[ $r == 1 ]] && dump=(--dump-items "$DATA.tmp")
        say "[$r/$REPEATS] running cargo bench -j2 --bench daemon -- --in-process-only --runs $RUNS" \
            "${dump:+(a release build: minutes the first time)}"
        cargo bench -j2 --bench daemon -- --in-process-only --runs "$RUNS" "${dump[@]}" \
            --json "$OUT/tailor-$r.json.tmp" \
            || { rm -f "$DATA.tmp" "$OUT/tailor-$r.json.tmp"; die "cargo bench --bench daemon failed (see above)"; }
        [[ $r == 1 ]] && mv "$DATA.tmp" "$DATA"
        mv "$OUT/tailor-$r.json.tmp" "$OUT/tailor-$r.json"
    fi
    say "[$r/$REPEATS] running pipeline.py --runs $RUNS on $DATA"
    "$PY" "$HERE/pipeline.py" --data "$DATA" --runs "$RUNS" --json "$OUT/haystack-$r.json.tmp" \
        || { rm -f "$OUT/haystack-$r.json.tmp"; die "pipeline.py failed; see its output above"; }
    mv "$OUT/haystack-$r.json.tmp" "$OUT/haystack-$r.json"
done

"$PY" "$HERE/report.py" --tailor "$OUT"/tailor-*.json --haystack "$OUT"/haystack-*.json --out "$OUT/ratios.json"
say "saved $OUT/data.json, $OUT/tailor-*.json, $OUT/haystack-*.json and $OUT/ratios.json"
