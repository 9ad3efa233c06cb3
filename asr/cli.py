"""The ``asr`` command: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .checkpoint import ModelFileError


def _train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import train

    config = load_config(args.config, args.overrides)
    model_path = train(config)
    print(model_path)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .data import read_manifest
    from .evaluate import evaluate
    from .recognizer import load_model

    recognizer = load_model(args.model, device=args.device)
    utterances = read_manifest(args.manifest, None, skip_bad=args.skip_bad)
    output = args.output or Path(args.model).parent / f"decode_{Path(args.manifest).stem}.jsonl"
    rates = evaluate(recognizer, utterances, output, args.batch_seconds, args.num_workers, progress=not args.json)
    if args.json:
        print(json.dumps(rates.as_dict()))
    else:
        print(rates)
        print(f"per-utterance results: {output}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Train and use CTC speech recognisers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model from a YAML recipe config")
    train.add_argument("config", help="YAML config (see recipes/)")
    train.add_argument("overrides", nargs="*", metavar="section.key=value", help="override config values")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="decode a manifest and print WER and CER")
    evaluate.add_argument("model", help="model file or training checkpoint")
    evaluate.add_argument("manifest", help="JSON-lines manifest (audio_filepath, duration, text)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (rates as fractions)")
    evaluate.add_argument("--output", type=Path, help="per-utterance results (default: beside the model)")
    evaluate.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    evaluate.add_argument("--batch-seconds", type=float, default=200.0, help="padded audio seconds per batch")
    evaluate.add_argument("--num-workers", type=int, default=1, help="audio loading processes")
    evaluate.add_argument("--skip-bad", action="store_true", help="skip bad manifest lines with a warning")
    evaluate.set_defaults(run=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``asr`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        return args.run(args)
    except (ValueError, ModelFileError) as error:  # our errors name the file and the problem
        print(f"asr: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
