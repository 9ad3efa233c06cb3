#!/usr/bin/env python3
"""Streaming against offline transcription: the words, and how long after a word ends it is shown.

    python benchmarks/stream_latency.py MODEL AUDIO... [--chunk-seconds 1] [--lookahead-seconds 0.5]
        [--context-seconds 2] [--final-context-seconds S] [--settle-seconds S] [--piece-seconds 0.1]
        [--threads 2] [--backend auto]

Each file is fed to ``Recognizer.stream()`` in pieces of ``--piece-seconds`` (as fast as the
machine allows; each piece's compute time is measured) and transcribed offline as well. Printed:
the WER of the stream's final text against the offline text, and the latency of each word: from
its end (its time in the final result) to the moment it is first shown (partial or final text),
taken as the end of the piece after which the shown text first had that many words, plus the time
that piece took to compute, as a live stream would see it. Median and 95th percentile over all
words of all files.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from machine import cpu_name  # benchmarks/machine.py, beside this script

import asr
from asr.audio import load_audio
from asr.metrics import error_rates
from asr.stream import SETTLE_SECONDS


def stream_file(recognizer, samples: np.ndarray, args) -> tuple[str, list[float], float]:
    """The stream's final text, each final word's latency in seconds, and the compute seconds."""
    stream = recognizer.stream(
        args.chunk_seconds,
        args.lookahead_seconds,
        args.context_seconds,
        args.final_context_seconds,
        args.settle_seconds,
    )
    piece = round(args.piece_seconds * recognizer.sample_rate)
    shown_at: list[float] = []  # when the k-th word was first shown (seconds of the stream's clock)
    final_words = 0
    compute = 0.0
    for first in range(0, len(samples) + piece, piece):
        start = time.perf_counter()
        update = stream.feed(samples[first : first + piece]) if first < len(samples) else stream.finish()
        took = time.perf_counter() - start
        compute += took
        final_words += sum(len(segment.words) for segment in update.final)
        shown = final_words + len(update.partial.split())
        clock = min(first + piece, len(samples)) / recognizer.sample_rate + took
        while len(shown_at) < shown:
            shown_at.append(clock)
    words = [word for segment in stream.segments for word in segment.words]
    latencies = [shown_at[k] - word.end for k, word in enumerate(words) if k < len(shown_at)]
    return stream.text, latencies, compute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("audio", nargs="+")
    parser.add_argument("--chunk-seconds", type=float, default=1.0)
    parser.add_argument("--lookahead-seconds", type=float, default=0.5)
    parser.add_argument("--context-seconds", type=float, default=2.0)
    parser.add_argument(
        "--final-context-seconds", type=float, default=None, help="default: the model's decoding.chunk_seconds"
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=None,
        help=f"audio a final's decoding must see (default: {SETTLE_SECONDS:g} s with utterance mean norm, else 0)",
    )
    parser.add_argument("--piece-seconds", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recognizer = asr.load_model(args.model, device="cpu", backend=args.backend)
    print(f"machine: {cpu_name()}, {platform.system()}, python {platform.python_version()}")
    print(
        f"model: {args.model} ({recognizer.backend}); chunks {args.chunk_seconds} s, look-ahead "
        f"{args.lookahead_seconds} s, context {args.context_seconds} s (finals "
        f"{args.final_context_seconds or recognizer.config.decoding.chunk_seconds} s, settle "
        f"{'default' if args.settle_seconds is None else args.settle_seconds}), pieces {args.piece_seconds} s, "
        f"{args.threads} threads"
    )
    offline, streamed, latencies, audio, compute = [], [], [], 0.0, 0.0
    for path in args.audio:
        samples = load_audio(path, recognizer.sample_rate)
        offline.append(recognizer.transcribe(samples).text)
        text, file_latencies, seconds = stream_file(recognizer, samples, args)
        streamed.append(text)
        latencies += file_latencies
        audio += len(samples) / recognizer.sample_rate
        compute += seconds
    rates = error_rates(offline, streamed)
    print(f"{len(args.audio)} file(s), {audio:.0f} s of audio, {sum(len(t.split()) for t in offline)} offline words")
    print(
        f"stream vs offline: WER {100 * rates.wer:.2f}% ({rates.substitutions} substitutions, "
        f"{rates.deletions} deletions, {rates.insertions} insertions)"
    )
    print(f"stream compute: {compute:.1f} s, real-time factor {compute / audio:.3f}")
    if latencies:
        values = np.array(latencies)
        print(
            f"word latency (end of word to shown): median {np.median(values):.2f} s, "
            f"95th percentile {np.percentile(values, 95):.2f} s, max {values.max():.2f} s ({len(values)} words)"
        )


if __name__ == "__main__":
    main()
