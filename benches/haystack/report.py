"""Prints the comparison of benches/haystack from the two sides' JSON files, one per repeat:
per-request overhead p50/p99 for each variant (the median over the repeats, and the range of the
p50s), the ratios Haystack ÷ Tailor, each stage's p50, and one example run of each side; checks
that the input's e-mail address never reached either LLM and that both sides sent the same prompt.

    python report.py --tailor TAILOR_JSON… --haystack HAYSTACK_JSON… [--out RATIOS_JSON]
"""

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

VARIANTS = ("cached-profile", "uncached")
# Tailor's stage labels in pipeline order; Haystack has the same components plus `prompt`.
STAGES = ("redacted", "words", "habits", "needed", "prompt", "answer", "clean")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def check_example(side: str, example: dict) -> list[str]:
    """Problems with one side's example run: the e-mail address reaching the LLM, no placeholder."""
    problems = []
    prompt = example.get("llm_prompt") or ""
    for address in EMAIL.findall(example["input"]):
        if address in prompt:
            problems.append(f"{side}: the input's e-mail address {address} reached the LLM")
    if "<EMAIL_1>" not in prompt:
        problems.append(f"{side}: no <EMAIL_1> placeholder in the prompt the LLM got")
    if not example.get("output"):
        problems.append(f"{side}: the run's output is empty")
    return problems


def load(paths: list[str]) -> list[dict]:
    return [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]


def summary(repeats: list[dict], variant: str) -> dict:
    """The median over the repeats of p50, p99 and each stage's p50, and the p50s' range."""
    runs = [r["variants"][variant] for r in repeats]
    p50s = [r["p50_ms"] for r in runs]
    stages = {s for r in runs for s in r["stages"]}
    return {
        "p50_ms": statistics.median(p50s),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "p50_range": (min(p50s), max(p50s)),
        "runs": runs[0]["runs"],
        "stages": {s: statistics.median(r["stages"][s] for r in runs if s in r["stages"]) for s in stages},
        "example": runs[0]["example"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tailor", nargs="+", required=True, help="tailor-N.json, one per repeat")
    parser.add_argument("--haystack", nargs="+", required=True, help="haystack-N.json, one per repeat")
    parser.add_argument("--out", help="write the ratios here as JSON")
    args = parser.parse_args()
    tailor_files, haystack_files = load(args.tailor), load(args.haystack)
    tailor = {v: summary(tailor_files, v) for v in VARIANTS}
    haystack = {v: summary(haystack_files, v) for v in VARIANTS}

    print(f"\nper-request overhead in process, without the LLM's time (ms, lower is better; the median of "
          f"{len(tailor_files)} Tailor and {len(haystack_files)} Haystack repeats, the p50s' range in brackets)\n")
    print(f"| {'variant':<15} | {'Tailor p50':>19} | {'Tailor p99':>10} | {'Haystack p50':>21} | {'Haystack p99':>12} "
          f"| {'p50 ratio':>9} | {'p99 ratio':>9} |")
    print(f"| {'-' * 15} | {'-' * 18}: | {'-' * 9}: | {'-' * 20}: | {'-' * 11}: | {'-' * 8}: | {'-' * 8}: |")
    ratios: dict = {"tailor_repeats": len(tailor_files), "haystack_repeats": len(haystack_files)}
    for v in VARIANTS:
        t, h = tailor[v], haystack[v]
        r50, r99 = h["p50_ms"] / t["p50_ms"], h["p99_ms"] / t["p99_ms"]
        ratios[v] = {
            "p50": r50,
            "p99": r99,
            "tailor_p50_ms": t["p50_ms"],
            "tailor_p99_ms": t["p99_ms"],
            "haystack_p50_ms": h["p50_ms"],
            "haystack_p99_ms": h["p99_ms"],
        }
        t50 = f"{t['p50_ms']:.2f} [{t['p50_range'][0]:.2f}–{t['p50_range'][1]:.2f}]"
        h50 = f"{h['p50_ms']:.2f} [{h['p50_range'][0]:.2f}–{h['p50_range'][1]:.2f}]"
        print(f"| {v:<15} | {t50:>19} | {t['p99_ms']:>10.2f} | {h50:>21} | {h['p99_ms']:>12.2f} "
              f"| {r50:>8.1f}× | {r99:>8.1f}× |")
    print(f"\nratio = Haystack ÷ Tailor; {tailor[VARIANTS[0]]['runs']} Tailor and {haystack[VARIANTS[0]]['runs']} "
          f"Haystack runs per variant and repeat, each after 50 warm-up runs. Haystack: haystack-ai "
          f"{haystack_files[0]['haystack_ai']}, Python {haystack_files[0]['python']}.")
    print("\nper stage, p50 ms (the generator's includes its LLM call; Haystack's from a separate traced pass)\n")
    print(f"| {'stage':<9} | " + " | ".join(f"{'Tailor ' + v:>22} | {'Haystack ' + v:>24}" for v in VARIANTS) + " |")
    print(f"| {'-' * 9} | " + " | ".join(f"{'-' * 21}: | {'-' * 23}:" for _ in VARIANTS) + " |")
    for stage in STAGES:
        cells = []
        for v in VARIANTS:
            t = tailor[v]["stages"].get(stage)
            h = haystack[v]["stages"].get(stage)
            cells.append(f"{'—' if t is None else f'{t:.3f}':>22} | {'—' if h is None else f'{h:.3f}':>24}")
        print(f"| {stage:<9} | " + " | ".join(cells) + " |")

    problems = []
    for side, variants in (("Tailor", tailor), ("Haystack", haystack)):
        for v in VARIANTS:
            problems += check_example(f"{side} {v}", variants[v]["example"])
        example = variants[VARIANTS[0]]["example"]
        print(f"\n{side}, one run ({VARIANTS[0]}):")
        print(f"  input:            {example['input']!r}")
        print(f"  what the LLM got: {example['llm_prompt']!r}")
        print(f"  output:           {example['output']!r}")
    if tailor[VARIANTS[0]]["example"]["llm_prompt"] == haystack[VARIANTS[0]]["example"]["llm_prompt"]:
        print("\nBoth sides sent the LLM the same prompt for the same message.")
    else:
        problems.append("the two sides sent the LLM different prompts for the same message")

    if args.out:
        Path(args.out).write_text(json.dumps(ratios, indent=2) + "\n", encoding="utf-8")
    if problems:
        for p in problems:
            print(f"report.py: error: {p}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
