#!/usr/bin/env python3
"""Training throughput on real data: audio-seconds trained per wall-second, padding, feature share.

    python benchmarks/train_throughput.py CONFIG DATA [--steps N] [section.key=value ...]

DATA is a LibriSpeech-layout folder (a manifest is made in a temporary folder) or a manifest.
It trains CONFIG's model for N steps (no dev evaluation) and prints, over the steps after
the first few warm-up ones:
  - audio-seconds trained per wall-second,
  - the fraction of padded samples in the batches (target <= 10%), for the steps trained and for
    a whole epoch of the sampler,
  - the share of step time spent computing features (target <= 10%) and waiting for data.
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
from pathlib import Path

import torch

from asr.config import load_config
from asr.augment import perturbation_speed
from asr.data import DurationBatchSampler, read_manifest
from asr.librispeech import make_manifest
from asr.train import train
from machine import cpu_name  # benchmarks/machine.py, beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("data", type=Path, help="LibriSpeech-layout folder or JSON-lines manifest")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the figures")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()  # overrides may follow --steps
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    with tempfile.TemporaryDirectory() as tmp:
        manifest = args.data
        if args.data.is_dir():
            manifest = Path(tmp) / "train.jsonl"
            make_manifest(args.data, manifest)
        config = load_config(args.config, args.overrides)
        config.data.train_manifest = str(manifest)
        config.data.dev_manifest = ""
        config.train.exp_dir = str(Path(tmp) / "exp")
        config.train.max_steps = args.steps
        config.train.resume = False
        train(config)
        with open(Path(tmp) / "exp" / "train_log.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f)][args.warmup :]
        durations = [u.duration for u in read_manifest(manifest) if u.duration <= config.data.max_duration]

    total = lambda key: sum(float(r[key]) for r in rows)  # noqa: E731
    step_seconds = total("step_seconds")
    audio = total("audio_seconds")
    padded_audio = sum(float(r["audio_seconds"]) / (1 - float(r["padded_fraction"])) for r in rows)
    sampler = DurationBatchSampler(
        durations, config.data.max_batch_seconds, seed=config.train.seed, speeds=config.data.speed_perturbation
    )
    epoch = sampler.epoch_batches(0)
    played = [
        d / perturbation_speed(config.data.speed_perturbation, config.train.seed, 0, i) for i, d in enumerate(durations)
    ]
    epoch_padded = sum(len(b) * max(played[i] for i in b) for b in epoch)

    print(f"\nmachine: {cpu_name()}, {torch.get_num_threads()} torch threads, device {config.train.device}")
    print(
        f"model: {config.model.rnn_type} x{config.model.num_layers}, hidden "
        f"{config.model.hidden_size}; max_batch_seconds {config.data.max_batch_seconds}"
    )
    print(f"steps measured: {len(rows)} (after {args.warmup} warm-up), {audio:.0f} s of audio in {step_seconds:.1f} s")
    print(f"throughput: {audio / step_seconds:.1f} audio-seconds per second")
    print(
        f"padded fraction: {1 - audio / padded_audio:.3f} in the steps trained, "
        f"{1 - sum(played) / epoch_padded:.3f} over a whole epoch (target <= 0.10)"
    )
    print(f"feature share of step time: {total('feature_seconds') / step_seconds:.3f} (target <= 0.10)")
    print(f"data-wait share of step time: {total('data_seconds') / step_seconds:.3f}")


if __name__ == "__main__":
    main()
