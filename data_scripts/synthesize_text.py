#!/usr/bin/env python3
r"""Speak the texts of a manifest (or a text file, one utterance per line) with random eSpeak NG voices,
offline: wavs plus OUT_DIR/synthetic.jsonl, to mix into a small real training set; with
--neural-share F, that share of them with the neural Piper voice instead.

    python data_scripts/synthesize_text.py data/train.jsonl data/synthetic --phrase-words 2 5 \
        --mixed data/train_mixed.jsonl

With --phrase-words MIN MAX each text is cut into phrases of MIN to MAX consecutive words, each spoken
on its own: short utterances are what gets a character CTC model off its all-blank plateau fast.
With --mixed, that manifest gets the input manifest's utterances followed by the synthetic ones
(absolute audio paths, so it can live anywhere).
"""

import argparse
import random

from asr.data import read_manifest, write_manifest
from asr.speech_corpus import make_synthetic_corpus
from asr.text import normalize_text


def read_texts(path: str) -> list[str]:
    """Manifest texts (a .jsonl file) or the lines of a text file, normalised like transcripts."""
    if path.endswith(".jsonl"):
        return [u.text for u in read_manifest(path)]
    with open(path, encoding="utf-8") as lines:
        return [normalize_text(line) for line in lines if line.strip()]


def split_into_phrases(texts: list[str], min_words: int, max_words: int, seed: int) -> list[str]:
    """Consecutive runs of ``min_words`` to ``max_words`` words of each text (the last may be shorter)."""
    rng = random.Random(seed)
    phrases = []
    for text in texts:
        words = text.split()
        start = 0
        while start < len(words):
            length = rng.randint(min_words, max_words)
            phrases.append(" ".join(words[start : start + length]))
            start += length
    return phrases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", help="manifest (.jsonl) or text file whose utterances are spoken")
    parser.add_argument("out_dir", help="folder for wavs/synthetic/ and synthetic.jsonl")
    parser.add_argument("--copies", type=int, default=1, help="times each text is spoken, each by another random voice")
    parser.add_argument(
        "--phrase-words",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="speak phrases of MIN to MAX words instead of whole texts",
    )
    parser.add_argument(
        "--mixed", help="also write this manifest: the input manifest's utterances plus the synthetic ones"
    )
    parser.add_argument(
        "--neural-share", type=float, default=0.0, help="share of utterances spoken by the Piper voice instead"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="synthesis processes")
    args = parser.parse_args()
    texts = read_texts(args.texts)
    if args.phrase_words:
        texts = split_into_phrases(texts, *args.phrase_words, seed=args.seed)
    if not 0 <= args.neural_share <= 1:
        parser.error(f"--neural-share must be from 0 to 1, not {args.neural_share}")
    synthetic = make_synthetic_corpus(
        texts, args.out_dir, args.copies, seed=args.seed, workers=args.workers, neural_share=args.neural_share
    )
    print(synthetic)
    if args.mixed:
        if not args.texts.endswith(".jsonl"):
            parser.error("--mixed needs a manifest (.jsonl) as input")
        utterances = read_manifest(args.texts) + read_manifest(synthetic)
        write_manifest(
            args.mixed,
            ({"audio_filepath": str(u.audio_filepath), "duration": u.duration, "text": u.text} for u in utterances),
        )
        print(args.mixed)


if __name__ == "__main__":
    main()
