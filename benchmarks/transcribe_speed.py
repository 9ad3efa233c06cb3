#!/usr/bin/env python3
"""Transcription speed and memory: real-time factor and peak resident memory.

    python benchmarks/transcribe_speed.py MODEL DIR [--threads 2] [--batch-size 16] [--device cpu] [--long-minutes 60]

MODEL is a model file, or a YAML recipe config for an untrained model of that size (the
speed of a model does not depend on its weights). DIR is a folder of audio files (searched
recursively) or one file. Each measurement runs in a fresh process, so its peak RSS is its own:
  1. every file under DIR, transcribed together;
  2. with --long-minutes M, one file of M minutes made by joining DIR's audio (written as FLAC
     to a temporary folder), transcribed in 30 s chunks.
RTF is transcription time (model loading excluded; on CUDA one warm-up file counts as loading) over
audio duration; lower is faster.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py, beside this script


def measure(model_path: str, paths: list[str], threads: int, batch_size: int, device: str = "cpu") -> dict:
    """Transcribe ``paths`` in this process and return the figures."""
    import torch

    import asr
    from asr.config import load_config
    from asr.model import CTCModel
    from asr.distributed import pick_device
    from asr.recognizer import Recognizer
    from asr.text import Vocabulary

    torch.set_num_threads(threads)
    start = time.perf_counter()
    if model_path.endswith((".yaml", ".yml")):
        config = load_config(model_path)
        vocabulary = Vocabulary()
        model = CTCModel(config.features.n_mels, len(vocabulary), config.model, config.features.utterance_mean_norm)
        recognizer = Recognizer(config, vocabulary, model, pick_device(device))
    else:
        recognizer = asr.load_model(model_path, device=device)
    if recognizer.device.type == "cuda":
        recognizer.transcribe(paths[:1])  # CUDA context and cuDNN set-up count as loading
        torch.cuda.synchronize()
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    results = recognizer.transcribe(paths, batch_size=batch_size, errors="report")
    seconds = time.perf_counter() - start
    audio = sum(r.duration for r in results)
    return {
        "files": len(paths),
        "failed": sum(r.error is not None for r in results),
        "audio_hours": audio / 3600,
        "load_seconds": load_seconds,
        "transcribe_seconds": seconds,
        "rtf": seconds / audio,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "parameters": recognizer.model.parameter_count(),
        "threads": torch.get_num_threads(),
        "device": str(recognizer.device),
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if recognizer.device.type == "cuda" else 0.0,
    }


def run_child(args: argparse.Namespace, paths: list[str]) -> dict:
    command = [
        sys.executable,
        __file__,
        args.model,
        "--child",
        "--threads",
        str(args.threads),
        "--batch-size",
        str(args.batch_size),
        "--device",
        args.device,
        *paths,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_long_file(paths: list[str], minutes: float, out: Path) -> None:
    """Join ``paths`` (repeating them as needed) into one 16 kHz FLAC of ``minutes``, one file at a time."""
    import soundfile as sf

    from asr.audio import load_audio

    needed = int(minutes * 60 * 16000)
    with sf.SoundFile(out, "w", samplerate=16000, channels=1, format="FLAC") as sink:
        while needed > 0:
            for path in paths:
                samples = load_audio(path)[:needed]
                sink.write(samples)
                needed -= len(samples)
                if needed <= 0:
                    break


def report(title: str, figures: dict) -> None:
    print(f"{title}: {figures['files']} file(s), {figures['audio_hours']:.3f} h of audio, {figures['failed']} failed")
    print(
        f"  model: {figures['parameters'] / 1e6:.1f} M parameters, loaded in "
        f"{figures['load_seconds']:.1f} s, on {figures['device']}, {figures['threads']} threads"
    )
    print(
        f"  transcription: {figures['transcribe_seconds']:.1f} s, "
        f"real-time factor {figures['rtf']:.4f} (target <= 0.05)"
    )
    print(
        f"  peak RSS: {figures['peak_rss_mb']:.0f} MB"
        + (f", peak GPU memory allocated: {figures['peak_gpu_mb']:.0f} MB" if figures["peak_gpu_mb"] else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model file, or a YAML config for an untrained model of its size")
    parser.add_argument("data", nargs="+", help="folder of audio files (or audio files)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--long-minutes", type=float, default=0, help="also time one file this long")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.model, args.data, args.threads, args.batch_size, args.device)))
        return

    from asr.audio import find_audio_files

    paths = [str(p) for d in args.data for p in (find_audio_files(d) if Path(d).is_dir() else [Path(d)])]
    print(f"machine: {cpu_name()}, {platform.system()}, python {platform.python_version()}")
    report("all files", run_child(args, paths))
    if args.long_minutes:
        with tempfile.TemporaryDirectory() as tmp:
            long_file = Path(tmp) / "long.flac"
            make_long_file(paths, args.long_minutes, long_file)
            report(f"one {args.long_minutes:g}-minute file", run_child(args, [str(long_file)]))


if __name__ == "__main__":
    main()
