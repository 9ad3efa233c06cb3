#!/usr/bin/env python3
"""RNN training-step time on this machine: packed input (pack_padded_sequence) against the
unpacked path `CTCModel.run_rnn` takes on the CPU, on the batch shapes of the two recipes.

    python benchmarks/rnn_speed.py [--repeats N] [--threads N]

For each shape it prints the best of N forward+backward passes of the RNN stack alone, both ways,
their ratio, and the largest difference between the two outputs (the same function, so ~1e-6).
"""

from __future__ import annotations

import argparse
import time

import torch

from asr.config import ModelConfig
from asr.model import CTCModel
from machine import cpu_name  # benchmarks/machine.py, beside this script

# (name, batch, output frames, hidden size, layers): a digits batch (60 s of ~1.9 s utterances,
# 25 frames/s) and LibriSpeech ones (60 s batches of 6 s and of 15 s utterances).
SHAPES = [
    ("digits 2x192", 32, 48, 192, 2),
    ("librispeech 3x256, 6 s", 10, 150, 256, 3),
    ("librispeech 3x256, 15 s", 4, 375, 256, 3),
]


def step_seconds(
    model: CTCModel, x: torch.Tensor, lengths: torch.Tensor, packed: bool, repeats: int
) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        model.zero_grad()
        start = time.perf_counter()
        out = model.run_rnn(x, lengths, packed=packed)
        out.pow(2).sum().backward()
        best = min(best, time.perf_counter() - start)
    return best, out.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| shape | batch x frames | packed | unpacked | speed-up | max output difference |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, batch, frames, hidden, layers in SHAPES:
        torch.manual_seed(0)
        model = CTCModel(80, 29, ModelConfig(num_layers=layers, hidden_size=hidden, dropout=0.0)).train()
        x = torch.randn(batch, frames, hidden)
        lengths = torch.linspace(frames, frames * 0.7, batch).long()  # as a length-sorted batch has
        packed, reference = step_seconds(model, x, lengths, True, args.repeats)
        unpacked, out = step_seconds(model, x, lengths, False, args.repeats)
        print(
            f"| {name} | {batch} x {frames} | {packed:.3f} s | {unpacked:.3f} s | "
            f"{packed / unpacked:.1f}x | {(out - reference).abs().max().item():.1e} |"
        )


if __name__ == "__main__":
    main()
