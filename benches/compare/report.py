"""Ratios between Tailor's retrieval bench and the Python baselines.

Reads the JSON of `cargo bench --bench retrieval` and of `baselines.py`, prints a table, then one JSON
object of ratios as the last thing on stdout (also written to `--out` when given). Every ratio reads
"higher is better for Tailor": throughput ratios are tailor / baseline, time ratios baseline / tailor.
A ratio whose inputs are missing is null, with a note on stderr, so a partial bench still reports.

Dense top-k may come in rounds: the two main files are round 1, and each `--dense-round TAILOR BASE`
(runs with `--skip encoder,bm25`) one more. Each round's ratios, roofline and fractions use only that
round's files, taken back to back, since a VM's memory bandwidth moves from one minute to the next;
the dense ratios reported are the medians over the rounds, and every round is listed.
"""

import argparse
import json
import statistics
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


def dense_round(tailor, base):
    """One round's dense ratios, roofline and fractions, from one Tailor run and one baselines run."""
    t_dense = lambda key: get(tailor, "dense_topk", key)
    top = roofline(tailor, base)
    return {
        "vs_faiss": ratio(get(base, "dense_topk", "faiss", "seconds_per_batch"),
                          t_dense("seconds_per_batch"), "dense vs faiss"),
        "vs_numpy": ratio(get(base, "dense_topk", "numpy", "seconds_per_batch"),
                          t_dense("seconds_per_batch"), "dense vs numpy"),
        "single_query_vs_faiss": ratio(get(base, "dense_topk", "faiss", "single_query_seconds"),
                                       t_dense("single_query_seconds"), "single query vs faiss"),
        "single_query_vs_numpy": ratio(get(base, "dense_topk", "numpy", "single_query_seconds"),
                                       t_dense("single_query_seconds"), "single query vs numpy"),
        "roofline_gb_per_s": top,
        "fraction_of_bandwidth": ratio(t_dense("items_gb_per_s"), top, "fraction of bandwidth"),
        "single_query_fraction_of_bandwidth": ratio(t_dense("single_query_items_gb_per_s"),
                                                    top, "single query fraction"),
        "tailor_seconds_per_batch": t_dense("seconds_per_batch"),
        "tailor_single_query_seconds": t_dense("single_query_seconds"),
        "tailor_items_gb_per_s": t_dense("items_gb_per_s"),
        "tailor_single_query_items_gb_per_s": t_dense("single_query_items_gb_per_s"),
        "tailor_memory_read_gb_per_s": get(tailor, "memory_read_gb_per_s"),
    }


def median_of(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratios(tailor, base, rounds=()):
    check_same(tailor, base, "encoder", ("texts", "batch"))
    for t, b in [(tailor, base), *rounds]:
        check_same(t, b, "dense_topk", ("items", "dim", "queries", "k"))
        check_same(tailor, t, "dense_topk", ("items", "dim", "queries", "k"))
    check_same(tailor, base, "bm25", ("documents", "queries"))
    bm25_best = get(base, "bm25", "queries_per_second")
    per_round = [dense_round(t, b) for t, b in [(tailor, base), *rounds]]
    dense = {key: median_of([r[key] for r in per_round]) for key in per_round[0]}
    dense["rounds"] = per_round
    return {
        "encoder": {
            "vs_sentence_transformers": ratio(get(tailor, "encoder", "sentences_per_second"),
                                              get(base, "encoder", "sentences_per_second"), "encoder"),
        },
        "dense_topk": dense,
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


def grid(header, rows):
    cells = [header] + rows
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table(tailor, base, r):
    rows = [
        ("encoder sentences/s", get(tailor, "encoder", "sentences_per_second"),
         get(base, "encoder", "sentences_per_second"), "sentence-transformers",
         get(r, "encoder", "vs_sentence_transformers")),
        ("bm25 queries/s", get(tailor, "bm25", "queries_per_second"),
         get(base, "bm25", "queries_per_second"),
         f"bm25s n_threads={fmt(get(base, 'bm25', 'best_n_threads'))}", get(r, "bm25", "vs_bm25s_best")),
    ]
    header = ("measure", "tailor", "baseline", "against", "ratio")
    main = grid(header, [(m, fmt(t), fmt(b), who, fmt(x)) for m, t, b, who, x in rows])
    return main + "\n\n" + dense_table(r["dense_topk"])


def dense_table(dense):
    """Dense top-k, a row per round and one of medians: seconds, ratios, GB/s against the round's
    roofline."""
    def row(name, d):
        pct = lambda x: "-" if x is None else f"{x:.0%}"
        return (
            name,
            fmt(d["tailor_seconds_per_batch"]), fmt(d["vs_faiss"], "x"), fmt(d["vs_numpy"], "x"),
            fmt(d["tailor_single_query_seconds"]), fmt(d["single_query_vs_faiss"], "x"),
            fmt(d["single_query_vs_numpy"], "x"),
            fmt(d["roofline_gb_per_s"]),
            f"{fmt(d['tailor_items_gb_per_s'])} ({pct(d['fraction_of_bandwidth'])})",
            f"{fmt(d['tailor_single_query_items_gb_per_s'])} ({pct(d['single_query_fraction_of_bandwidth'])})",
        )
    header = ("dense top-k", "batch s", "vs faiss", "vs numpy", "1-query s", "vs faiss", "vs numpy",
              "roofline GB/s", "batch GB/s", "1-query GB/s")
    rows = [row(f"round {i}", d) for i, d in enumerate(dense["rounds"], 1)]
    rows.append(row("median", dense))
    return grid(header, rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tailor", help="JSON printed by cargo bench --bench retrieval")
    p.add_argument("baselines", help="JSON printed by baselines.py")
    p.add_argument("--dense-round", nargs=2, action="append", default=[], metavar=("TAILOR", "BASELINES"),
                   help="one more dense round: the two JSON files of runs with --skip encoder,bm25")
    p.add_argument("--out", help="also write the ratios JSON here")
    args = p.parse_args()

    def load(path):
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"error: cannot read {path}: {e}")

    tailor, base = load(args.tailor), load(args.baselines)
    rounds = [(load(t), load(b)) for t, b in args.dense_round]
    r = ratios(tailor, base, rounds)
    print(table(tailor, base, r))
    print("\nratios (higher is better for Tailor; time ratios are baseline/tailor):")
    out = {"ratios": r, "tailor": args.tailor, "baselines": args.baselines,
           "dense_rounds": args.dense_round, "versions": base.get("versions")}
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
