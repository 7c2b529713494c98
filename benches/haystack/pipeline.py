"""The Haystack side of benches/haystack: the daemon bench's six-stage pipeline (benches/daemon.rs)
as a Haystack 2.x `Pipeline`, run in process one request at a time, its per-request overhead
measured the way the Tailor side measures it (wall time of a run minus the time spent in the
LLM call), for the same two variants (the profile's statistics cached, and computed every time).

    python pipeline.py --data FILE [--runs N] [--json FILE]

`--data` is what `cargo bench --bench daemon -- --dump-items FILE` writes: the user's 1,000
history items and the messages; warm-up run i and measured run i both get message i, as on the
Tailor side. The LLM is fake_llm.py, started here as a separate process on loopback.

Stages, named as in the Tailor pipeline (prompt rendering is a stage of its own in Haystack):
  redacted  PiiRedactor, placeholders              (builtin:pii-redact operator="placeholder")
  words     InMemoryBM25Retriever, top_k=8         (builtin:retrieve method="bm25" k=8)
  habits    Profile over the 200 newest items      (builtin:profile max-items=200, cached or not)
  needed    Minimize, fields=count, 4 items        (builtin:minimize fields="count" max-items=4)
  prompt    PromptBuilder                          (builtin:generate's prompt template)
  answer    OpenAIGenerator, max_tokens=32         (builtin:generate max-tokens=32)
  clean     PiiRedactor, masks                     (builtin:pii-redact operator="mask")
"""

import argparse
import contextlib
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import urllib.request
import warnings
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

# No usage telemetry (it would post to PostHog from a background thread); set before the import.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from haystack import Document, Pipeline, component, tracing  # noqa: E402
from haystack.components.builders import PromptBuilder  # noqa: E402
from haystack.components.generators import OpenAIGenerator  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402
from haystack.tracing.tracer import NullSpan  # noqa: E402
from haystack.utils import Secret  # noqa: E402

HERE = Path(__file__).resolve().parent
WARM_UP = 50
USER = "ana"
# The history version the profile's cache is keyed on, as the Tailor side passes `history_version: 1`.
HISTORY_VERSION = 1

# ---------------------------------------------------------------------------------------------
# Words, as tailor-plugin-sdk's `text` module has them: lowercased words (an approximation of
# Unicode word segmentation), and content words (two characters or more, a letter, not an
# English stop word; the same list).

WORD = re.compile(r"\w+(?:['’.]\w+)*")
STOPWORDS = frozenset(
    """a about above after again against ain all am an and any are aren aren't as at be because been before being
    below between both but by can can't cannot could couldn couldn't d did didn didn't do does doesn doesn't doing
    don don't down during each few for from further had hadn hadn't has hasn hasn't have haven haven't having he
    he'd he'll he's her here hers herself him himself his how i i'd i'll i'm i've if in into is isn isn't it it'd
    it'll it's its itself just let's ll m ma me mightn mightn't more most mustn mustn't my myself needn needn't no
    nor not now o of off on once only or other our ours ourselves out over own re s same shan shan't she she'd
    she'll she's should should've shouldn shouldn't so some such t than that that'll that's the their theirs them
    themselves then there there's these they they'd they'll they're they've this those through to too under until
    up ve very was wasn wasn't we we'd we'll we're we've were weren weren't what what's when where which while who
    who's whom why will with won won't would wouldn wouldn't y you you'd you'll you're you've your yours yourself
    yourselves""".split()
)


def words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in WORD.findall(text)]


def is_content_word(word: str) -> bool:
    return len(word) >= 2 and any(c.isalpha() for c in word) and word not in STOPWORDS


# ---------------------------------------------------------------------------------------------
# 1 and 6: PII redaction. Presidio would be the usual choice, but its analyzer needs a spaCy
# model from a model hub; these are regular-expression recognizers with Presidio's validations
# (Luhn for cards, mod 97 for IBANs, octet ranges for IPv4, SSN group rules).


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    s = text.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    rotated = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rotated)) % 97 == 1


def digit_count_ok(low: int, high: int):
    return lambda m: low <= sum(c.isdigit() for c in m) <= high


def card_ok(m: str) -> bool:
    digits = re.sub(r"\D", "", m)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# (label, pattern, validator, strength): strength breaks ties between overlapping detections as
# tailor-pii does (a checksum beats a structure check, which beats a bare pattern).
RECOGNIZERS = [
    ("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b"), None, 2),
    ("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)]"), None, 2),
    ("IP", re.compile(rf"(?<![\d.])(?:{OCTET}\.){{3}}{OCTET}(?![\d.])"), None, 2),
    ("US_SSN", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"), None, 2),
    ("CREDIT_CARD", re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), card_ok, 3),
    ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), iban_ok, 3),
    (
        "PHONE",
        re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?!\w)"),
        digit_count_ok(7, 15),
        1,
    ),
]


def detect(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping detections, in order: the longest first where they overlap, then the
    strongest."""
    found = []
    for label, pattern, valid, strength in RECOGNIZERS:
        for m in pattern.finditer(text):
            if valid is None or valid(m.group()):
                found.append((m.start(), m.end(), label, strength))
    found.sort(key=lambda d: (-(d[1] - d[0]), -d[3], d[0]))
    kept: list[tuple[int, int, str, int]] = []
    for d in found:
        if all(d[1] <= k[0] or d[0] >= k[1] for k in kept):
            kept.append(d)
    return sorted((start, end, label) for start, end, label, _ in kept)


@component
class PiiRedactor:
    """Replaces personal data: `placeholder` → `<EMAIL_1>` (numbered per type in order of first
    appearance, the same number for the same value), `mask` → one `*` per character."""

    def __init__(self, operator: str = "placeholder") -> None:
        if operator not in ("placeholder", "mask"):
            raise ValueError(f"unknown operator {operator!r}")
        self.operator = operator

    @component.output_types(text=str, found=list[str])
    def run(self, text: str) -> dict[str, Any]:
        out = []
        numbers: dict[tuple[str, str], int] = {}
        per_label: Counter[str] = Counter()
        found = set()
        at = 0
        for start, end, label in detect(text):
            found.add(label.lower().replace("_", "-"))
            value = text[start:end]
            if self.operator == "mask":
                replacement = "*" * len(value)
            else:
                key = (label, re.sub(r"\s", "", value).lower())
                if key not in numbers:
                    per_label[label] += 1
                    numbers[key] = per_label[label]
                replacement = f"<{label}_{numbers[key]}>"
            out.append(text[at:start])
            out.append(replacement)
            at = end
        out.append(text[at:])
        return {"text": "".join(out), "found": sorted(found)}


# ---------------------------------------------------------------------------------------------
# 3: the profile's statistics, as builtin:profile computes them, over the user's newest items.


def profile_stats(docs: list[Document]) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    frequency: Counter[str] = Counter()
    lengths = []
    fields: dict[str, list[float]] = {}
    for doc in docs:
        kinds[doc.meta.get("kind", "")] += 1
        ws = words(doc.content or "")
        lengths.append(len(ws))
        frequency.update(w for w in ws if is_content_word(w))
        for name, value in doc.meta.items():
            if name not in ("kind", "seq", "timestamp") and isinstance(value, (int, float)):
                fields.setdefault(name, []).append(float(value))
    # Most frequent first, ties alphabetical.
    top_words = [w for w, _ in sorted(frequency.items(), key=lambda wc: (-wc[1], wc[0]))[:20]]
    stamps = [d.meta["timestamp"] for d in docs if d.meta.get("timestamp") is not None]
    return {
        "count": len(docs),
        "kinds": dict(sorted(kinds.items())),
        "top_words": top_words,
        "mean_words": statistics.fmean(lengths) if lengths else 0.0,
        "median_words": statistics.median(lengths) if lengths else 0.0,
        "first": min(stamps) if stamps else None,
        "last": max(stamps) if stamps else None,
        "field_means": {k: statistics.fmean(v) for k, v in sorted(fields.items())},
    }


@component
class Profile:
    """Statistics over the user's `max_items` newest items (newest by timestamp, then the latest
    written); with `cache_seconds`, memoized per user and history version for that long, as
    Tailor's `cache="10m"` does."""

    def __init__(self, document_store: InMemoryDocumentStore, max_items: int = 200, cache_seconds: float | None = None):
        self.document_store = document_store
        self.max_items = max_items
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}

    @component.output_types(stats=dict)
    def run(self, user: str, history_version: int) -> dict[str, Any]:
        key = (user, history_version)
        if self.cache_seconds is not None:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return {"stats": hit[1]}
        # The bench's store holds this one user's items (one store per user; see the README).
        docs = self.document_store.filter_documents()
        docs.sort(
            key=lambda d: (d.meta.get("timestamp") is not None, d.meta.get("timestamp") or 0.0, d.meta["seq"]),
            reverse=True,
        )
        stats = profile_stats(docs[: self.max_items])
        if self.cache_seconds is not None:
            self._cache[key] = (time.monotonic() + self.cache_seconds, stats)
        return {"stats": stats}


# ---------------------------------------------------------------------------------------------
# 4: data minimization, as builtin:minimize does it: the retrieved items are scored against the
# task by BM25 (k1 1.2, b 0.75) with the items themselves as the corpus, and revealed best first
# while their score is at least `min_relevance` × the best one, up to `max_items`; of the
# profile only `fields` pass; only the items' text passes.

K1, B = 1.2, 0.75


def lexical_scores(task: str, texts: list[str]) -> list[float] | None:
    query = {w for w in words(task) if is_content_word(w)}
    if not query:
        return None
    docs = [[w for w in words(t) if is_content_word(w)] for t in texts]
    n = len(docs)
    mean_len = max(sum(map(len, docs)) / n, 1.0)
    idf = {term: math.log(1.0 + (n - (df := sum(term in d for d in docs)) + 0.5) / (df + 0.5)) for term in query}
    scores = []
    for doc in docs:
        norm = K1 * (1.0 - B + B * len(doc) / mean_len)
        counts = Counter(doc)
        scores.append(sum(w * counts[t] * (K1 + 1.0) / (counts[t] + norm) for t, w in idf.items() if counts[t]))
    return scores


def reveal(scores: list[float] | None, length: int, max_items: int, min_relevance: float) -> list[int]:
    if scores is None:
        return list(range(min(length, max_items)))
    best = max([0.0, *scores])
    if best <= 0.0:
        return []
    order = [i for i in range(length) if scores[i] > 0.0 and scores[i] >= min_relevance * best]
    order.sort(key=lambda i: -scores[i])  # stable: equal scores keep their given order
    return order[:max_items]


@component
class Minimize:
    """Passes on only the profile fields and history items the next stage needs."""

    def __init__(self, fields: list[str], max_items: int = 5, min_relevance: float = 0.5) -> None:
        self.fields = fields
        self.max_items = max_items
        self.min_relevance = min_relevance

    @component.output_types(items=list[str], profile=dict, withheld=dict)
    def run(self, documents: list[Document], profile: dict, task: str) -> dict[str, Any]:
        texts = [d.content or "" for d in documents]
        scores = lexical_scores(task.strip(), texts) if task.strip() and texts else None
        chosen = reveal(scores, len(texts), self.max_items, self.min_relevance)
        kept = {k: v for k, v in profile.items() if k in self.fields}
        withheld = {
            "items": len(texts) - len(chosen),
            "item_fields": ["id", "kind"],
            "profile_fields": sorted(k for k in profile if k not in self.fields),
        }
        return {"items": [texts[i] for i in chosen], "profile": kept, "withheld": withheld}


# ---------------------------------------------------------------------------------------------
# 5: the prompt, the same text as the Tailor pipeline's `prompt` template renders.

TEMPLATE = (
    "{% for it in items %}- {{ it }}\n{% endfor %}The user has {{ profile.count }} notes. Question: {{ question }}\n"
)


class LlmTimer:
    """Adds up the time spent in the OpenAI client's completion call, as the Tailor side's
    `Timed` wrapper does around its LLM client (request building, the HTTP round trip, parsing)."""

    def __init__(self) -> None:
        self.total = 0.0

    def wrap(self, generator: OpenAIGenerator) -> None:
        completions = generator.client.chat.completions
        create = completions.create

        def timed_create(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return create(*args, **kwargs)
            finally:
                self.total += time.perf_counter() - started

        completions.create = timed_create


def build_pipeline(store: InMemoryDocumentStore, llm_url: str, cached: bool, timer: LlmTimer) -> Pipeline:
    with warnings.catch_warnings():
        # OpenAIGenerator is deprecated in favour of OpenAIChatGenerator (see the README).
        warnings.simplefilter("ignore", FutureWarning)
        generator = OpenAIGenerator(
            api_key=Secret.from_token("bench-key"),
            model="fake",
            api_base_url=llm_url,
            # What Tailor's builtin:generate sends with `max-tokens 32`.
            generation_kwargs={"max_tokens": 32, "temperature": 0.7, "top_p": 1.0, "n": 1},
        )
    timer.wrap(generator)
    pipe = Pipeline()
    pipe.add_component("redacted", PiiRedactor(operator="placeholder"))
    pipe.add_component("words", InMemoryBM25Retriever(document_store=store, top_k=8))
    pipe.add_component("habits", Profile(store, max_items=200, cache_seconds=600.0 if cached else None))
    pipe.add_component("needed", Minimize(fields=["count"], max_items=4, min_relevance=0.5))
    pipe.add_component("prompt", PromptBuilder(template=TEMPLATE, required_variables=["items", "profile", "question"]))
    pipe.add_component("answer", generator)
    pipe.add_component("clean", PiiRedactor(operator="mask"))
    pipe.connect("redacted.text", "words.query")
    pipe.connect("redacted.text", "needed.task")
    pipe.connect("redacted.text", "prompt.question")
    pipe.connect("words.documents", "needed.documents")
    pipe.connect("habits.stats", "needed.profile")
    pipe.connect("needed.items", "prompt.items")
    pipe.connect("needed.profile", "prompt.profile")
    pipe.connect("prompt.prompt", "answer.prompt")
    # list[str] → str: Haystack unwraps a one-element list on the connection.
    pipe.connect("answer.replies", "clean.text")
    return pipe


class StageTracer(tracing.Tracer):
    """Records each component run's duration (used in a separate pass, not in the measured one)."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def trace(self, operation_name: str, tags: dict[str, Any] | None = None, parent_span: Any = None):
        started = time.perf_counter()
        try:
            yield NullSpan()
        finally:
            if operation_name == "haystack.component.run" and tags:
                name = tags["haystack.component.name"]
                self.times.setdefault(name, []).append((time.perf_counter() - started) * 1e3)

    def current_span(self) -> None:
        return None


def percentile(sorted_values: list[float], p: float) -> float:
    """The same nearest-rank percentile as benches/daemon.rs."""
    if not sorted_values:
        return math.nan
    return sorted_values[round((len(sorted_values) - 1) * p)]


def start_fake_llm() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_llm.py")], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", required=True, help="items and messages from `cargo bench --bench daemon -- --dump-items`"
    )
    parser.add_argument("--runs", type=int, default=500, help="measured runs per variant (default 500)")
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args()

    data = json.loads(Path(args.data).read_text(encoding="utf-8"))
    items, messages = data["items"], data["messages"]
    needed = max(args.runs, WARM_UP)
    if len(messages) < needed:
        sys.exit(f"error: {args.data} has {len(messages)} messages, {needed} needed (dump with --runs {args.runs})")

    # The ingest, once and untimed, as the Tailor side's POST of the items.
    store = InMemoryDocumentStore(bm25_algorithm="BM25Okapi", bm25_parameters={"k1": 1.2, "b": 0.75})
    store.write_documents(
        [
            Document(id=it["id"], content=it["text"], meta={"kind": it["kind"], "seq": seq})
            for seq, it in enumerate(items)
        ]
    )

    proc, port = start_fake_llm()
    llm_url = f"http://127.0.0.1:{port}/v1"
    results: dict[str, Any] = {}
    try:
        print(
            f"haystack-ai {version('haystack-ai')} on Python {platform.python_version()}: six-stage pipeline, "
            f"{len(items)} history items, fake LLM on loopback (a separate process)"
        )
        for name, cached in (("cached-profile", True), ("uncached", False)):
            timer = LlmTimer()
            pipe = build_pipeline(store, llm_url, cached, timer)
            pipe.warm_up()

            def run(i: int) -> tuple[float, float, dict[str, Any]]:
                timer.total = 0.0
                started = time.perf_counter()
                user = {"user": USER, "history_version": HISTORY_VERSION}
                out = pipe.run({"redacted": {"text": messages[i]}, "habits": user})
                wall = time.perf_counter() - started
                return (wall - timer.total) * 1e3, timer.total * 1e3, out

            for i in range(WARM_UP):
                run(i)
            measured = [run(i) for i in range(args.runs)]
            overhead = sorted(m[0] for m in measured)
            llm = sorted(m[1] for m in measured)

            # Per component, in a second pass with a tracer (tracing costs a little, so it is kept
            # out of the measured runs).
            tracer = StageTracer()
            tracing.enable_tracing(tracer)
            try:
                for i in range(args.runs):
                    run(i)
            finally:
                tracing.disable_tracing()
            stages = {label: percentile(sorted(times), 0.5) for label, times in tracer.times.items()}

            last = args.runs - 1
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/last") as resp:
                request = json.loads(resp.read())
            # The last request is the tracer pass's run `last`, which got the same message.
            example = {
                "input": messages[last],
                "llm_prompt": request["messages"][-1]["content"],
                "output": measured[last][2]["clean"]["text"],
            }
            results[name] = {
                "p50_ms": percentile(overhead, 0.5),
                "p99_ms": percentile(overhead, 0.99),
                "runs": args.runs,
                "llm_p50_ms": percentile(llm, 0.5),
                "stages": stages,
                "example": example,
            }
            print(f"\n{name}:")
            print(
                f"in process (Pipeline.run), without the LLM's time: p50 {percentile(overhead, 0.5):.2f} ms, "
                f"p99 {percentile(overhead, 0.99):.2f} ms ({args.runs} runs); "
                f"the LLM call's p50 {percentile(llm, 0.5):.2f} ms"
            )
            per_stage = ", ".join(f"{label} {ms:.2f}" for label, ms in stages.items())
            print(f"  per component, p50 ms (a traced pass; the generator's includes its LLM call): {per_stage}")
            print(f"  example: {json.dumps(example)}")
    finally:
        proc.terminate()
        proc.wait()

    if args.json:
        out = {
            "haystack_ai": version("haystack-ai"),
            "openai": version("openai"),
            "python": platform.python_version(),
            "variants": results,
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
