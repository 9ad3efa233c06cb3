"""Speaker adaptation measured: for each speaker of a manifest, ``asr adapt`` on their first N
minutes (utterances in id order), then CER and WER on the rest of their utterances and on the
other speakers' (did it forget?), greedy and, with ``--lm``, with the model's own LM decoding.

    python benchmarks/adapt_speakers.py MODEL MANIFEST OUT_DIR --minutes 3 [--name NAME] [--lm]
        [--baseline] [--lr 5e-5 --steps 200 --stay-close 0 --renormalize --freeze PREFIX ...]

``--baseline`` scores MODEL itself on the same splits. One JSON line per speaker is printed and
appended to OUT_DIR/results.jsonl. The figures, with command, machine and date, go in
``recipes/librispeech/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py, beside this script


def score(model: Path, utterances: list, lm: bool) -> list[float]:
    """[WER, CER] in percent of ``model`` on ``utterances``, as ``asr transcribe`` writes, greedy
    unless ``lm`` (then the model's own decoding)."""
    from asr.evaluate import evaluate
    from asr.recognizer import load_model

    recognizer = load_model(model, device="cpu")
    if not lm:
        greedy = dataclasses.replace(recognizer.config.decoding, method="greedy", lm="", lexicon="", hotwords="")
        recognizer.config = dataclasses.replace(recognizer.config, decoding=greedy)
    rates = evaluate(recognizer, utterances, progress=False)
    return [round(100 * rates.wer, 2), round(100 * rates.cer, 2)]


def first_minutes(utterances: list, minutes: float) -> int:
    """How many of ``utterances`` (in order) make up the first ``minutes`` of audio (at least one more
    utterance once the count is reached: the first N minutes, rounded up)."""
    total, count = 0.0, 0
    for utterance in utterances:
        if total >= minutes * 60:
            break
        total, count = total + utterance.duration, count + 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--name", default="adapt")
    parser.add_argument("--lm", action="store_true", help="also score with the model's own (LM) decoding")
    parser.add_argument("--baseline", action="store_true", help="score MODEL itself")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--stay-close", type=float, default=0.0)
    parser.add_argument("--renormalize", action="store_true")
    parser.add_argument("--freeze", action="append", default=[])
    args = parser.parse_args()

    from asr.adapt import AdaptOptions, adapt
    from asr.data import read_manifest, write_manifest

    options = AdaptOptions(
        lr=args.lr,
        steps=args.steps,
        stay_close=args.stay_close,
        renormalize=args.renormalize,
        freeze=tuple(args.freeze),
        device="cpu",
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    utterances = sorted(read_manifest(args.manifest), key=lambda u: u.audio_filepath.name)
    for speaker in sorted({u.speaker for u in utterances}):
        mine = [u for u in utterances if u.speaker == speaker]
        others = [u for u in utterances if u.speaker != speaker]
        count = first_minutes(mine, args.minutes)
        first, rest = mine[:count], mine[count:]
        split = args.out_dir / f"{speaker}_first{args.minutes:g}.jsonl"
        records = [{"audio_filepath": str(u.audio_filepath), "duration": u.duration, "text": u.text} for u in first]
        write_manifest(split, (record | {"speaker": speaker} for record in records))
        row = {"name": "base" if args.baseline else args.name, "speaker": speaker, "cpu": cpu_name()}
        row |= {"minutes": round(sum(u.duration for u in first) / 60, 2), "adapt_utts": count, "rest_utts": len(rest)}
        tick = time.perf_counter()
        model = args.model
        if not args.baseline:
            stem = f"{args.name}_{speaker}_{args.minutes:g}"
            result = adapt(args.model, split, args.out_dir / f"{stem}.pt", options, args.out_dir / f"{stem}.work")
            model = result.output
            row |= {"adapted": result.adapted, "held_out_before": str(result.before), "after": str(result.after)}
        row["adapt_seconds"] = round(time.perf_counter() - tick)
        for lm in [False, True] if args.lm else [False]:
            tag = "lm" if lm else "greedy"
            row[f"rest_{tag}"], row[f"other_{tag}"] = score(model, rest, lm), score(model, others, lm)
        print(json.dumps(row), flush=True)
        with open(args.out_dir / "results.jsonl", "a") as out:
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
