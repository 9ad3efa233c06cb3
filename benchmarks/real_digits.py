"""A digits model on real people: WER on the utterances of any manifest whose words are all digits,
greedy and with the lexicon beam search, each with its report page, beside pocketsphinx.

    python benchmarks/real_digits.py MODEL MANIFEST [MANIFEST ...] [--beam-model MODEL_LM]
        [--out-dir DIR] [--pocketsphinx] [--json]

MODEL is decoded greedily; ``--beam-model`` (by default ``model_lm.pt`` beside MODEL, the digits
recipe's stage 3 output, when it exists) with the decoding stored in it. Each manifest's utterances
made of digit words only ("zero" or "oh" to "nine") are kept; the rest are left out and counted.
Per manifest and decoder, OUT_DIR (default: ``real_digits/`` beside MODEL) gets the decode file and
the ``asr report`` page. pocketsphinx (``pip install pocketsphinx``) decodes with its bundled
general en-us model, as a CPU user's peer.

The figures, with command, machine and date, go in ``recipes/digits/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py, beside this script


def digit_utterances(manifest: Path) -> tuple[list, int]:
    """The utterances of ``manifest`` whose words are all digit words, and how many others it has."""
    from asr.data import read_manifest
    from asr.digits import is_digit_text

    utterances = read_manifest(manifest)
    kept = [u for u in utterances if is_digit_text(u.text)]
    return kept, len(utterances) - len(kept)


def score_model(model_path: Path, utterances: list, decode_path: Path, manifest: Path) -> dict:
    """Decode ``utterances`` with the model file's own decoding; write the decode file and its report."""
    from asr.evaluate import evaluate
    from asr.recognizer import load_model
    from asr.report import write_report

    recognizer = load_model(model_path, device="cpu")
    start = time.perf_counter()
    settings = {"model": str(model_path), "manifest": f"{manifest} (digit utterances)"}
    rates = evaluate(recognizer, utterances, decode_path, progress=False, settings=settings)
    seconds = time.perf_counter() - start
    report = write_report(decode_path, decode_path.with_suffix(".html"))
    return {"method": recognizer.config.decoding.method, **rates.as_dict(), "seconds": seconds, "report": str(report)}


def score_pocketsphinx(utterances: list) -> dict:
    from asr.metrics import error_rates
    from transcribe_speed import pocketsphinx_transcribe  # benchmarks/, beside this script

    hypotheses, seconds, _ = pocketsphinx_transcribe([str(u.audio_filepath) for u in utterances])
    return {"method": "pocketsphinx", **error_rates([u.text for u in utterances], hypotheses).as_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a digits model file, decoded greedily")
    parser.add_argument("manifests", type=Path, nargs="+", help="JSON-lines manifests of real speech")
    parser.add_argument("--beam-model", type=Path, help="model file with the lexicon beam search (default model_lm.pt)")
    parser.add_argument("--out-dir", type=Path, help="decode files and reports (default real_digits/ beside MODEL)")
    parser.add_argument("--pocketsphinx", action="store_true", help="also decode with pocketsphinx's en-us model")
    parser.add_argument("--json", action="store_true", help="print one JSON object per manifest and decoder")
    args = parser.parse_args()

    beam_model = args.beam_model or args.model.parent / "model_lm.pt"
    models = {"greedy": args.model}
    if beam_model.is_file():
        models["beam"] = beam_model
    elif args.beam_model:
        sys.exit(f"{beam_model}: no such model file")
    out_dir = args.out_dir or args.model.parent / "real_digits"
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {cpu_name()}; date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", file=sys.stderr)
    rows = []
    for manifest in args.manifests:
        utterances, left_out = digit_utterances(manifest)
        if not utterances:
            sys.exit(f"{manifest}: no utterance whose words are all digits")
        name = manifest.stem
        common = {"manifest": str(manifest), "left_out": left_out}
        for label, path in models.items():
            rows.append(
                {
                    **common,
                    "decoder": label,
                    **score_model(path, utterances, out_dir / f"{name}_{label}.jsonl", manifest),
                }
            )
        if args.pocketsphinx:
            rows.append({**common, "decoder": "pocketsphinx", **score_pocketsphinx(utterances)})
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            words = f"{row['reference_words']} words, {row['utterances']} utterances ({row['left_out']} not digits)"
            figures = f"WER {100 * row['wer']:.2f}% CER {100 * row['cer']:.2f}%"
            print(f"{row['manifest']}\t{row['decoder']}\t{figures}\t{words}\t{row.get('report', '')}")


if __name__ == "__main__":
    main()
