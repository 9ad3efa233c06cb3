#!/usr/bin/env python3
"""Make the embedded connected-digits corpus with eSpeak NG (offline): wavs plus train/dev/test manifests."""

import argparse

from asr.digits import make_digits_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", help="folder for wavs/ and train.jsonl, dev.jsonl, test.jsonl")
    parser.add_argument("--train", type=int, default=6000, help="training utterances")
    parser.add_argument("--dev", type=int, default=200, help="dev utterances (voices unseen in training)")
    parser.add_argument("--test", type=int, default=500, help="test utterances (voices unseen in training and dev)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="synthesis processes")
    parser.add_argument("--min-digits", type=int, default=2, help="digits in the shortest strings (at most 6)")
    parser.add_argument(
        "--neural", type=int, default=0, help="training utterances of the Piper voice (asr.piper_voice)"
    )
    parser.add_argument("--real", help="manifest of recordings of people saying digits, added to train.jsonl")
    parser.add_argument("--real-copies", type=int, default=1, help="times train.jsonl lists each --real recording")
    parser.add_argument(
        "--dev-share", type=float, default=0.1, help="share of eSpeak's voice variants kept for dev (test's are fixed)"
    )
    parser.add_argument(
        "--robotic-share", type=float, default=0.0, help="share of the random training voices made robotic too"
    )
    args = parser.parse_args()
    if not 0 <= args.robotic_share <= 1:
        parser.error(f"--robotic-share must be 0 to 1, not {args.robotic_share}")
    if not 0 < args.dev_share <= 0.5:
        parser.error(f"--dev-share must be over 0 and at most 0.5, not {args.dev_share}")
    if not 1 <= args.min_digits <= 6:
        parser.error(f"--min-digits must be 1 to 6, not {args.min_digits}")
    if args.neural < 0:
        parser.error(f"--neural must be 0 or more, not {args.neural}")
    if args.real_copies < 1:
        parser.error(f"--real-copies must be at least 1, not {args.real_copies}")
    manifests = make_digits_corpus(
        args.out_dir,
        args.train,
        args.dev,
        args.test,
        seed=args.seed,
        workers=args.workers,
        min_digits=args.min_digits,
        neural_utterances=args.neural,
        real_manifest=args.real,
        real_copies=args.real_copies,
        dev_share=args.dev_share,
        robotic_share=args.robotic_share,
    )
    for name, path in manifests.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
