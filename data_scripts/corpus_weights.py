"""Print a ``data.train_manifests`` value (YAML flow list) for manifests given as MANIFEST[:WEIGHT]:
a manifest without a weight is weighted by its hours, so that mixing keeps the corpora's own
proportions. Used by recipes/librispeech/run.sh --extra-speech."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def manifest_hours(path: Path) -> float:
    """The hours of audio a manifest lists (its ``duration`` fields)."""
    with path.open(encoding="utf-8") as f:
        return sum(float(json.loads(line)["duration"]) for line in f if line.strip()) / 3600


def corpora_value(items: list[str]) -> str:
    """``[{path: ..., weight: ..., name: ...}, ...]`` for ``items`` (``MANIFEST[:WEIGHT]``)."""
    entries, names = [], set()
    for item in items:
        path_text, _, weight_text = item.rpartition(":") if ":" in item else (item, "", "")
        path = Path(path_text).resolve()
        if not path.is_file():
            raise ValueError(f"{path}: no such manifest")
        weight = float(weight_text) if weight_text else manifest_hours(path)
        if not (0 < weight < math.inf):
            raise ValueError(f"{item}: the weight must be positive and finite, not {weight}")
        name = path.stem if path.stem not in names else f"{path.parent.name}_{path.stem}"
        names.add(name)
        entries.append(f"{{path: {json.dumps(str(path))}, weight: {weight:.4f}, name: {name}}}")
    return "[" + ", ".join(entries) + "]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifests", nargs="+", help="MANIFEST or MANIFEST:WEIGHT")
    args = parser.parse_args(argv)
    try:
        print(corpora_value(args.manifests))
    except (ValueError, KeyError, json.JSONDecodeError) as error:
        print(f"corpus_weights.py: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
