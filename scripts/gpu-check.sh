#!/usr/bin/env bash
# The CUDA check of issue 4, as one short script for a GPU machine that has no network and no
# Rust: the kernels' tests and the dense-scoring benchmark, built elsewhere with the `cuda`
# feature, run here against the GPU, beside PyTorch's matmul + topk on the same shapes.
#
# Build (on a machine with the toolchain; needs no CUDA, which cudarc loads at run time):
#   bash scripts/gpu-check.sh --build        # the two binaries, compressed, in .gpu/
# Run (on the GPU machine, from the repository root, with .gpu/ beside it):
#   bash scripts/gpu-check.sh [OUT_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "${1:-}" = "--build" ]; then
    export CARGO_TARGET_DIR="$ROOT/target/cuda"
    args=(-p tailor-kernels --no-default-features --features cuda)
    tests=$(cargo test -j2 --release "${args[@]}" --lib --no-run --message-format=json \
        | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason")=="compiler-artifact" and m.get("executable")][-1])')
    bench=$(cargo bench -j2 "${args[@]}" --bench scoring --no-run --message-format=json \
        | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason")=="compiler-artifact" and m.get("executable")][-1])')
    mkdir -p .gpu
    cp "$tests" .gpu/kernel-tests
    cp "$bench" .gpu/scoring
    strip .gpu/kernel-tests .gpu/scoring
    # Each binary links LLVM (cubecl-cuda's PTX back end): compressed, both travel in ~45 MB.
    xz -T0 -9 -f .gpu/kernel-tests .gpu/scoring
    ls -la .gpu
    exit 0
fi

for bin in kernel-tests scoring; do
    if [ ! -x ".gpu/$bin" ]; then
        python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
            ".gpu/$bin.xz" "/tmp/$bin"
        chmod +x "/tmp/$bin"
    fi
done
bin() { if [ -x ".gpu/$1" ]; then echo ".gpu/$1"; else echo "/tmp/$1"; fi; }

OUT="${1:-$ROOT/target/gpu-check}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv | tee "$OUT/gpu.txt"

# cudarc opens libcuda and libnvrtc at run time: point it at the toolkit's copy.
nvrtc=$(find /usr/local/cuda*/ /usr/lib /opt -name 'libnvrtc.so*' 2>/dev/null | head -1 || true)
[ -n "$nvrtc" ] && export LD_LIBRARY_PATH="$(dirname "$nvrtc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "nvrtc: ${nvrtc:-not found}"

failed=""
# Every kernel against its Rust reference on CUDA. The encoder's end-to-end tests need the
# MiniLM weights (fetched with pip, impossible offline); its layers are each tested here.
TAILOR_BACKEND=cuda RUST_BACKTRACE=1 "$(bin kernel-tests)" --test-threads 1 \
    --skip matches_sentence_transformers --skip truncates_long_texts --skip empty_input_gives 2>&1 | tee "$OUT/tests.txt" || failed="tests $failed"

TAILOR_BACKEND=cuda "$(bin scoring)" --items 1000000 --queries 16 --k 10 --runs 20 | tee "$OUT/tailor.json" || failed="scoring $failed"
python3 benches/gpu/torch_baseline.py --items 1000000 --queries 16 --k 10 --runs 20 | tee "$OUT/torch.json" || failed="torch $failed"
[ -z "$failed" ] || { echo "gpu-check: failed: $failed" >&2; exit 1; }
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
t, b = json.load(open(f"{out}/tailor.json")), json.load(open(f"{out}/torch.json"))
roof = b["read_gb_per_s"]
for case in ("batch", "single"):
    tt, bb = t[case]["median_seconds"], b[case]["median_seconds"]
    print(f"{case}: tailor {tt*1e3:.3f} ms ({t[case]['items_gb_per_s']:.0f} GB/s, "
          f"{t[case]['items_gb_per_s']/roof:.0%} of measured read bandwidth {roof:.0f} GB/s); "
          f"torch {bb*1e3:.3f} ms; tailor/torch speed {bb/tt:.2f}x")
PY
