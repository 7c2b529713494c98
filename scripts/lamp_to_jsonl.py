#!/usr/bin/env python3
"""Converts a LaMP task's question and output files to the dataset `tailor eval pipeline` reads.

    python3 scripts/lamp_to_jsonl.py QUESTIONS.json OUTPUTS.json > DATA.jsonl [--kind review]

LaMP (https://lamp-benchmark.github.io) ships, per task and split, a questions file (a JSON array
of {id, input, profile: [{id, text?, title?, score?, …}]}) and an outputs file ({task, golds:
[{id, output}]}). Each question becomes one row {id, user, input, profile, output}: LaMP gives
every question its own profile, so `user` is the question's id unless the question carries a
`user_id`; each profile entry becomes an item {id, kind, text, fields} whose text is the entry's
`text`, else its `title` (entries with both keep the title in `fields`), and whose other
properties (`score`, `category`, `date`, …) go to `fields`.
"""

import argparse
import json
import sys


def item(entry, kind):
    entry = dict(entry)
    item_id = str(entry.pop("id"))
    text = entry.pop("text", None)
    if text is None:
        text = entry.pop("title", None)
    if text is None:
        raise ValueError(f"profile entry {item_id} has neither text nor title")
    fields = {k: v for k, v in entry.items() if v is not None}
    out = {"id": item_id, "kind": kind, "text": text}
    if fields:
        out["fields"] = fields
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions")
    parser.add_argument("outputs")
    parser.add_argument("--kind", default="item", help="the kind given to every profile item")
    args = parser.parse_args()
    with open(args.questions) as f:
        questions = json.load(f)
    with open(args.outputs) as f:
        golds = {str(g["id"]): g["output"] for g in json.load(f)["golds"]}
    missing = 0
    for q in questions:
        qid = str(q["id"])
        if qid not in golds:
            missing += 1
            continue
        row = {
            "id": qid,
            "user": str(q.get("user_id", qid)),
            "input": q["input"],
            "profile": [item(e, args.kind) for e in q.get("profile", [])],
            "output": str(golds[qid]),
        }
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    if missing:
        print(f"lamp_to_jsonl: {missing} questions have no gold output and were left out", file=sys.stderr)


if __name__ == "__main__":
    main()
