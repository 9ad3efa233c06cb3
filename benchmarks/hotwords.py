"""Hot words measured: every word of a manifest's transcripts that the model's lexicon lacks is
listed as a hot word; their recall (how many of their occurrences the output has), and the WER of
the utterances without any of them, before and with the list, at each boost.

    python benchmarks/hotwords.py MODEL_LM MANIFEST OUT_DIR --boosts 2,4,6

MODEL_LM decodes with a word LM and lexicon (``asr tune-lm --out``, the LibriSpeech recipe's
``model_lm.pt``). One JSON line per boost is printed and appended to OUT_DIR/hot_results.jsonl;
OUT_DIR also gets each list and the transcripts. The figures, with command, machine and date, go in
``recipes/librispeech/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py, beside this script


def recall(utterances: list, hypotheses: list[str], hot: set[str]) -> tuple[int, int]:
    """(found, total): the hot-word occurrences of the references that the hypotheses hold (per
    utterance, each word counted at most as often as it was said)."""
    found = total = 0
    for utterance, hypothesis in zip(utterances, hypotheses):
        said = collections.Counter(w for w in utterance.text.split() if w in hot)
        written = collections.Counter(hypothesis.split())
        found += sum(min(count, written[word]) for word, count in said.items())
        total += sum(said.values())
    return found, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--boosts", default="6", help="comma-separated boosts to try")
    args = parser.parse_args()

    from asr.data import read_manifest
    from asr.evaluate import decode_utterances
    from asr.metrics import error_rates
    from asr.recognizer import load_model

    args.out_dir.mkdir(parents=True, exist_ok=True)
    recognizer = load_model(args.model, device="cpu")
    plain = recognizer.config.decoding
    if not plain.lexicon:
        parser.error(f"{args.model}: decodes without a lexicon; hot words need one (asr tune-lm --lexicon)")
    lexicon = {line.split()[0] for line in open(plain.lexicon, encoding="utf-8") if line.strip()}
    utterances = read_manifest(args.manifest)
    hot = sorted({w for u in utterances for w in u.text.split() if w not in lexicon})
    without = [i for i, u in enumerate(utterances) if not set(u.text.split()) & set(hot)]
    print(f"{len(hot)} hot words; {len(utterances) - len(without)} utterances with them, {len(without)} without")
    for boost in ["none"] + args.boosts.split(","):
        decoding = plain
        if boost != "none":
            listed = args.out_dir / f"hot_{boost}.txt"
            listed.write_text("".join(f"{word} {boost}\n" for word in hot))
            decoding = dataclasses.replace(plain, hotwords=str(listed))
        recognizer.config = dataclasses.replace(recognizer.config, decoding=decoding)
        tick = time.perf_counter()
        hypotheses = decode_utterances(recognizer, utterances, progress=False)
        seconds = time.perf_counter() - tick
        found, total = recall(utterances, hypotheses, set(hot))
        rest = error_rates([utterances[i].text for i in without], [hypotheses[i] for i in without])
        every = error_rates([u.text for u in utterances], hypotheses)
        row = {"boost": boost, "recall": f"{found}/{total}", "wer_without": round(100 * rest.wer, 2)}
        row |= {"cer_without": round(100 * rest.cer, 2), "wer_all": round(100 * every.wer, 2)}
        row |= {"decode_seconds": round(seconds), "cpu": cpu_name()}
        print(json.dumps(row), flush=True)
        with open(args.out_dir / "hot_results.jsonl", "a") as out:
            out.write(json.dumps(row) + "\n")
        (args.out_dir / f"hypotheses_{boost}.json").write_text(json.dumps(hypotheses))


if __name__ == "__main__":
    main()
