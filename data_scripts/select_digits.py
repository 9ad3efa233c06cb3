"""Copy the utterances of a manifest whose words are all digit words into a folder, split by speaker.

    python data_scripts/select_digits.py MANIFEST OUT_DIR [--dev-share 0.33] [--seed 0]

Writes OUT_DIR/train.jsonl and OUT_DIR/audio/* (its files, copied as they are) and, with
--dev-share > 0, OUT_DIR/dev.jsonl: a seeded share of the speakers (at least one), whose utterances
stay where they are (absolute paths) and never reach train.
Used to make the digits recipe's real recordings (recipes/digits/real/) from CMU AN4's training
speakers, keeping the rest of them to choose on.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

from asr.digits import is_digit_text
from asr.text import normalize_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--dev-share", type=float, default=0.0, help="share of the speakers kept out of train")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 0 <= args.dev_share < 1:
        parser.error(f"--dev-share must be in [0, 1), not {args.dev_share}")

    base = args.manifest.resolve().parent
    records = [json.loads(line) for line in args.manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    digits = [r for r in records if is_digit_text(normalize_text(r["text"]))]
    speakers = sorted({r.get("speaker", "") for r in digits})
    random.Random(args.seed).shuffle(speakers)
    n_dev = max(1, round(args.dev_share * len(speakers))) if args.dev_share else 0
    dev_speakers = set(speakers[:n_dev])
    (args.out_dir / "audio").mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[dict]] = {"train": [], "dev": []}
    for record in digits:
        source = base / record["audio_filepath"]
        if record.get("speaker", "") in dev_speakers:
            splits["dev"].append({**record, "audio_filepath": str(source)})
        else:
            shutil.copyfile(source, args.out_dir / "audio" / source.name)
            splits["train"].append({**record, "audio_filepath": f"audio/{source.name}"})
    for name, rows in splits.items():
        if rows:
            with (args.out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as out:
                out.writelines(json.dumps(row) + "\n" for row in rows)
        seconds = sum(r["duration"] for r in rows)
        print(f"{name}: {len(rows)} utterances, {len({r.get('speaker') for r in rows})} speakers, {seconds:.0f} s")


if __name__ == "__main__":
    main()
