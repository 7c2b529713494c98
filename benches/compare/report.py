"""Ratios between Tailor's retrieval bench and the Python baselines.

Reads the JSON of `cargo bench --bench retrieval` and of `baselines.py`, prints a table, then one JSON
object of ratios as the last thing on stdout (also written to `--out` when given). Every ratio reads
"higher is better for Tailor": throughput ratios are tailor / baseline, time ratios baseline / tailor.
A ratio whose inputs are missing is null, with a note on stderr, so a partial bench still reports.
"""

import argparse
import json
import sys


def get(obj, *path):
    for key in path:
        if not isinstance(obj, dict) or obj.get(key) is None:
            return None
        obj = obj[key]
    return obj


def ratio(num, den, what):
    if num is None or den is None or den == 0:
        print(f"[report] note: {what}: missing input, ratio is null", file=sys.stderr)
        return None
    return num / den


def check_same(tailor, base, section, keys):
    for key in keys:
        t, b = get(tailor, section, key), get(base, section, key)
        if t is not None and b is not None and t != b:
            print(f"[report] warning: {section}.{key} differs: tailor {t}, baselines {b}", file=sys.stderr)


def roofline(tailor, base):
    """The item matrix's read bandwidth: the fastest any single pass over it went in this run.

    Every exhaustive search reads the whole matrix at least once, so each one's items GB/s (and the
    bench's parallel sum, `memory_read_gb_per_s`) is a lower bound on what memory delivers; the
    largest of them is the honest roofline (a weak sum alone would flatter the fraction).
    """
    rates = [get(tailor, "memory_read_gb_per_s")]
    for who in ((tailor, "dense_topk"), (base, "dense_topk", "numpy"), (base, "dense_topk", "faiss")):
        rates += [get(*who, "items_gb_per_s"), get(*who, "single_query_items_gb_per_s")]
    rates = [r for r in rates if r is not None]
    return max(rates) if rates else None


def ratios(tailor, base):
    check_same(tailor, base, "encoder", ("texts", "batch"))
    check_same(tailor, base, "dense_topk", ("items", "dim", "queries", "k"))
    check_same(tailor, base, "bm25", ("documents", "queries"))
    t_dense = lambda key: get(tailor, "dense_topk", key)
    bm25_best = get(base, "bm25", "queries_per_second")
    top = roofline(tailor, base)
    return {
        "encoder": {
            "vs_sentence_transformers": ratio(get(tailor, "encoder", "sentences_per_second"),
                                              get(base, "encoder", "sentences_per_second"), "encoder"),
        },
        "dense_topk": {
            "vs_faiss": ratio(get(base, "dense_topk", "faiss", "seconds_per_batch"),
                              t_dense("seconds_per_batch"), "dense vs faiss"),
            "vs_numpy": ratio(get(base, "dense_topk", "numpy", "seconds_per_batch"),
                              t_dense("seconds_per_batch"), "dense vs numpy"),
            "single_query_vs_faiss": ratio(get(base, "dense_topk", "faiss", "single_query_seconds"),
                                           t_dense("single_query_seconds"), "single query vs faiss"),
            "single_query_vs_numpy": ratio(get(base, "dense_topk", "numpy", "single_query_seconds"),
                                           t_dense("single_query_seconds"), "single query vs numpy"),
            "roofline_gb_per_s": top,
            "fraction_of_bandwidth": ratio(t_dense("items_gb_per_s"), top,
                                           "fraction of bandwidth"),
            "single_query_fraction_of_bandwidth": ratio(t_dense("single_query_items_gb_per_s"),
                                                        top, "single query fraction"),
        },
        "bm25": {
            "vs_bm25s_best": ratio(get(tailor, "bm25", "queries_per_second"), bm25_best, "bm25"),
            "bm25s_best_n_threads": get(base, "bm25", "best_n_threads"),
        },
    }


def fmt(x, unit=""):
    if x is None:
        return "-"
    if isinstance(x, float):
        x = f"{x:.4g}"
    return f"{x}{unit}"


def table(tailor, base, r):
    rows = [
        ("encoder sentences/s", get(tailor, "encoder", "sentences_per_second"),
         get(base, "encoder", "sentences_per_second"), "sentence-transformers",
         get(r, "encoder", "vs_sentence_transformers")),
        ("dense batch seconds", get(tailor, "dense_topk", "seconds_per_batch"),
         get(base, "dense_topk", "faiss", "seconds_per_batch"), "faiss IndexFlatIP",
         get(r, "dense_topk", "vs_faiss")),
        ("dense batch seconds", get(tailor, "dense_topk", "seconds_per_batch"),
         get(base, "dense_topk", "numpy", "seconds_per_batch"), "numpy",
         get(r, "dense_topk", "vs_numpy")),
        ("dense 1-query seconds", get(tailor, "dense_topk", "single_query_seconds"),
         get(base, "dense_topk", "faiss", "single_query_seconds"), "faiss IndexFlatIP",
         get(r, "dense_topk", "single_query_vs_faiss")),
        ("dense 1-query seconds", get(tailor, "dense_topk", "single_query_seconds"),
         get(base, "dense_topk", "numpy", "single_query_seconds"), "numpy",
         get(r, "dense_topk", "single_query_vs_numpy")),
        ("dense items GB/s", get(tailor, "dense_topk", "items_gb_per_s"),
         get(r, "dense_topk", "roofline_gb_per_s"), "read bandwidth (fastest pass)",
         get(r, "dense_topk", "fraction_of_bandwidth")),
        ("dense 1-query items GB/s", get(tailor, "dense_topk", "single_query_items_gb_per_s"),
         get(r, "dense_topk", "roofline_gb_per_s"), "read bandwidth (fastest pass)",
         get(r, "dense_topk", "single_query_fraction_of_bandwidth")),
        ("bm25 queries/s", get(tailor, "bm25", "queries_per_second"),
         get(base, "bm25", "queries_per_second"),
         f"bm25s n_threads={fmt(get(base, 'bm25', 'best_n_threads'))}", get(r, "bm25", "vs_bm25s_best")),
    ]
    header = ("measure", "tailor", "baseline", "against", "ratio")
    cells = [header] + [(m, fmt(t), fmt(b), who, fmt(x)) for m, t, b, who, x in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tailor", help="JSON printed by cargo bench --bench retrieval")
    p.add_argument("baselines", help="JSON printed by baselines.py")
    p.add_argument("--out", help="also write the ratios JSON here")
    args = p.parse_args()
    docs = []
    for path in (args.tailor, args.baselines):
        try:
            with open(path, encoding="utf-8") as f:
                docs.append(json.load(f))
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"error: cannot read {path}: {e}")
    tailor, base = docs
    r = ratios(tailor, base)
    print(table(tailor, base, r))
    print("\nratios (higher is better for Tailor; time ratios are baseline/tailor):")
    out = {"ratios": r, "tailor": args.tailor, "baselines": args.baselines, "versions": base.get("versions")}
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
