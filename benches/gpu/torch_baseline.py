"""PyTorch's dense top-k on the GPU, the baseline for `cargo bench -p tailor-kernels --bench scoring`
on CUDA: the same shapes (random unit vectors, queries x items^T, then topk), and the GPU's
memory read bandwidth measured the same way (a sum over a buffer as large as the item matrix),
the roofline for an exhaustive dense search. Prints one JSON object.

    python3 benches/gpu/torch_baseline.py [--items 1000000] [--dim 384] [--queries 16] [--k 10] [--runs 20]
"""

import argparse
import json
import statistics
import time

import torch


def timed(fn, runs):
    """Median and best of `runs` device times (CUDA events), after a warm-up."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times), min(times)


def wall(fn, runs):
    """Median and best wall-clock seconds of a call that ends on the host, as Tailor's bench times."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    gen = torch.Generator(device="cuda").manual_seed(7)
    items = torch.nn.functional.normalize(torch.rand(args.items, args.dim, device="cuda", generator=gen) - 0.5, dim=1)
    queries = torch.nn.functional.normalize(torch.rand(args.queries, args.dim, device="cuda", generator=gen) - 0.5, dim=1)
    gb = items.numel() * 4 / 1e9

    def search(q):
        def run():
            scores = q @ items.T
            values, indices = torch.topk(scores, args.k, dim=1)
            # the results reach the host, as Tailor's do
            return values.cpu(), indices.cpu()
        return run

    read_med, read_best = timed(lambda: items.sum(), args.runs)
    copy_target = torch.empty_like(items)
    copy_med, _ = timed(lambda: copy_target.copy_(items), args.runs)
    batch_med, batch_best = wall(search(queries), args.runs)
    single_med, single_best = wall(search(queries[:1]), args.runs)
    props = torch.cuda.get_device_properties(0)
    print(json.dumps({
        "device": props.name,
        "torch": torch.__version__,
        "items": args.items, "dim": args.dim, "queries": args.queries, "k": args.k, "runs": args.runs,
        "read_gb_per_s": gb / read_med, "read_gb_per_s_best": gb / read_best,
        "copy_gb_per_s_read_plus_write": 2 * gb / copy_med,
        "batch": {"median_seconds": batch_med, "best_seconds": batch_best, "items_gb_per_s": gb / batch_med},
        "single": {"median_seconds": single_med, "best_seconds": single_best, "items_gb_per_s": gb / single_med},
    }, indent=2))


if __name__ == "__main__":
    main()
