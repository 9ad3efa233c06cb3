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
    args = parser.parse_args()
    manifests = make_digits_corpus(args.out_dir, args.train, args.dev, args.test, seed=args.seed, workers=args.workers)
    for name, path in manifests.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
