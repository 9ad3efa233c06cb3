#!/usr/bin/env python3
"""Transcription speed, memory and words, backend against backend and against pocketsphinx.

    python benchmarks/transcribe_speed.py MODEL DIR
        [--backends torch,torch-int8,onnxruntime,onnxruntime-int8,pocketsphinx] [--threads 1,2]
        [--batch-size 16] [--limit N] [--long-minutes M] [--device cpu]

MODEL is a model file, or a YAML recipe config for an untrained model of that size (speed does not
depend on the weights). DIR is a folder of audio files (searched recursively; LibriSpeech
``.trans.txt`` files beside them give each backend a WER) or one file. The ONNX files (fp32 and
int8) are exported from MODEL into a temporary folder first. Each backend and thread count runs
in a fresh process on the same files, so its peak RSS is its own; model loading is excluded from
the time. The real-time factor (RTF) is transcription time over audio duration (lower is faster).
pocketsphinx (``pip install pocketsphinx``, optional) decodes with its bundled en-us model and
runs single-threaded whatever ``--threads`` says; its time is per file, like ours end to end
(our figure includes voice activity detection and decoding, not only the network).
With --long-minutes M, one file of M minutes made by joining DIR's audio is timed too (torch).
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

BACKENDS = ("torch", "torch-int8", "onnxruntime", "onnxruntime-int8", "pocketsphinx")


def load(model_path: str, backend: str, exported: dict, device: str):
    """The recognizer that ``backend`` runs (an untrained one of the config's size for a YAML)."""
    import asr
    from asr.config import load_config
    from asr.distributed import pick_device
    from asr.model import CTCModel
    from asr.recognizer import Recognizer
    from asr.text import Vocabulary

    if backend.startswith("onnxruntime"):
        return asr.load_model(exported[backend], backend="onnxruntime")
    if model_path.endswith((".yaml", ".yml")):
        config = load_config(model_path)
        vocabulary = Vocabulary()
        model = CTCModel(config.features.n_mels, len(vocabulary), config.model, config.features.utterance_mean_norm)
        recognizer = Recognizer(config, vocabulary, model, pick_device(device))
        if backend == "torch-int8":
            from asr.export import int8_model

            recognizer.model = int8_model(recognizer.model)
        return recognizer
    return asr.load_model(model_path, device=device, int8=backend == "torch-int8")


def measure(model_path: str, backend: str, exported: dict, paths: list[str], threads: int, args) -> dict:
    """Transcribe ``paths`` in this process with ``backend`` and return the figures."""
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    network = [0.0]
    if backend == "pocketsphinx":
        hypotheses, seconds, audio = pocketsphinx_transcribe(paths)
        load_seconds = 0.0
    else:
        recognizer = load(model_path, backend, exported, args.device)
        if recognizer.device.type == "cuda":
            recognizer.transcribe(paths[:1])  # CUDA context and cuDNN set-up count as loading
            torch.cuda.synchronize()
        load_seconds = time.perf_counter() - start
        network = time_network(recognizer)
        start = time.perf_counter()
        results = recognizer.transcribe(paths, batch_size=args.batch_size, errors="report")
        seconds = time.perf_counter() - start
        audio = sum(r.duration for r in results)
        hypotheses = [r.text for r in results]
    return {
        "backend": backend,
        "files": len(paths),
        "audio_hours": audio / 3600,
        "load_seconds": load_seconds,
        "transcribe_seconds": seconds,
        "rtf": seconds / audio,
        "network_rtf": network[0] / audio if backend != "pocketsphinx" else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": 1 if backend == "pocketsphinx" else threads,
        "hypotheses": hypotheses,
    }


def time_network(recognizer) -> list[float]:
    """A one-item list that accumulates the seconds spent in the acoustic model (features and
    network: what the backends differ in) while ``recognizer`` transcribes."""
    total = [0.0]
    log_probs = recognizer.log_probs

    def timed(waveforms, sample_counts):
        start = time.perf_counter()
        result = log_probs(waveforms, sample_counts)
        total[0] += time.perf_counter() - start
        return result

    recognizer.log_probs = timed
    return total


def pocketsphinx_transcribe(paths: list[str]) -> tuple[list[str], float, float]:
    """pocketsphinx 5 with its bundled en-us model: hypotheses, decoding seconds (file reading
    excluded, as ours reads ahead in threads) and audio seconds."""
    import numpy as np
    from pocketsphinx import Decoder

    from asr.audio import load_audio
    from asr.text import normalize_text

    decoder = Decoder(samprate=16000, loglevel="FATAL")
    hypotheses, seconds, audio = [], 0.0, 0.0
    for path in paths:
        samples = load_audio(path, 16000)
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes()
        start = time.perf_counter()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        seconds += time.perf_counter() - start
        audio += len(samples) / 16000
        hypotheses.append(normalize_text(hypothesis.hypstr) if hypothesis else "")
    return hypotheses, seconds, audio


def run_child(args: argparse.Namespace, backend: str, threads: int, exported: dict, paths: list[str]) -> dict:
    command = [sys.executable, __file__, args.model, "--child", backend, "--threads", str(threads)]
    command += ["--batch-size", str(args.batch_size), "--device", args.device, "--exported", json.dumps(exported)]
    done = subprocess.run(command + paths, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{backend} with {threads} thread(s) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def references_for(paths: list[str]) -> list[str] | None:
    """The LibriSpeech transcript of each path (normalised), or None when one has none."""
    from asr.text import normalize_text

    texts: dict[str, str] = {}
    for folder in {Path(p).parent for p in paths}:
        for transcript in folder.glob("*.trans.txt"):
            for line in transcript.read_text().splitlines():
                utterance, _, text = line.partition(" ")
                texts[utterance] = normalize_text(text)
    found = [texts.get(Path(p).stem) for p in paths]
    return None if None in found else found


def export_models(model: str, folder: Path, backends: list[str]) -> dict:
    """ONNX fp32 and int8 files of ``model`` in ``folder``, for the backends that need them."""
    exported = {}
    recognizer = None
    for backend in backends:
        if backend.startswith("onnxruntime"):
            if recognizer is None:
                recognizer = load(model, "torch", {}, "cpu")
            exported[backend] = str(folder / f"{backend}.onnx")
            recognizer.export(exported[backend], "onnx", int8=backend.endswith("int8"))
    return exported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model file, or a YAML config for an untrained model of its size")
    parser.add_argument("data", nargs="+", help="folder of audio files (or audio files)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated, of {', '.join(BACKENDS)}")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit", type=int, default=0, help="only the first N files (sorted)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (torch only)")
    parser.add_argument("--long-minutes", type=float, default=0, help="also time one file this long (torch)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--exported", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = measure(args.model, args.child, json.loads(args.exported), args.data, int(args.threads), args)
        print(json.dumps(figures))
        return

    from asr.audio import find_audio_files
    from asr.metrics import error_rates

    paths = sorted(str(p) for d in args.data for p in (find_audio_files(d) if Path(d).is_dir() else [Path(d)]))
    paths = paths[: args.limit] if args.limit else paths
    backends = args.backends.split(",")
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        raise SystemExit(f"unknown backends: {', '.join(sorted(unknown))}")
    references = references_for(paths)
    print(f"machine: {cpu_name()}, {platform.system()}, python {platform.python_version()}")
    print(f"model: {args.model}; {len(paths)} files")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_models(args.model, Path(tmp), backends)
        first_hypotheses = None
        for backend in backends:
            for threads in [int(t) for t in args.threads.split(",")]:
                if backend == "pocketsphinx" and rows and rows[-1]["backend"] == "pocketsphinx":
                    continue  # single-threaded: one run is its figure
                figures = run_child(args, backend, threads, exported, paths)
                first_hypotheses = first_hypotheses or figures["hypotheses"]
                figures["wer"] = error_rates(references, figures["hypotheses"]).wer if references else None
                figures["same_as_first"] = sum(a == b for a, b in zip(figures["hypotheses"], first_hypotheses))
                rows.append(figures)
                print(format_row(figures), flush=True)
        if args.long_minutes:
            long_file = Path(tmp) / "long.flac"
            make_long_file(paths, args.long_minutes, long_file)
            figures = run_child(args, "torch", int(args.threads.split(",")[-1]), exported, [str(long_file)])
            print(
                f"one {args.long_minutes:g}-minute file, torch: RTF {figures['rtf']:.4f}, "
                f"peak RSS {figures['peak_rss_mb']:.0f} MB"
            )
    print_summary(rows)


def format_row(figures: dict) -> str:
    wer = f"WER {100 * figures['wer']:.2f}%" if figures["wer"] is not None else "no references"
    return (
        f"{figures['backend']:>17} x{figures['threads']}: {figures['transcribe_seconds']:7.1f} s for "
        f"{figures['audio_hours'] * 3600:.0f} s of audio, RTF {figures['rtf']:.4f} "
        f"(acoustic model {figures['network_rtf'] or 0:.4f}), peak RSS "
        f"{figures['peak_rss_mb']:.0f} MB, load {figures['load_seconds']:.1f} s, {wer}, "
        f"{figures['same_as_first']}/{figures['files']} transcripts as the first backend's"
    )


def print_summary(rows: list[dict]) -> None:
    """Each backend's speed as a multiple of pocketsphinx's and of torch fp32's at the same
    threads: end to end, and for the acoustic model alone (what the backends differ in)."""
    sphinx = next((r["rtf"] for r in rows if r["backend"] == "pocketsphinx"), None)
    print(
        "\nbackend | threads | RTF | x faster than pocketsphinx | x faster than torch fp32 | acoustic model RTF "
        "| its x faster than torch fp32 | peak RSS MB | WER"
    )
    for row in rows:
        torch_row = next((r for r in rows if r["backend"] == "torch" and r["threads"] == row["threads"]), None)
        versus_sphinx = f"{sphinx / row['rtf']:.1f}" if sphinx else "-"
        versus_torch = network = network_versus_torch = "-"
        if torch_row and row["backend"] != "pocketsphinx":
            versus_torch = f"{torch_row['rtf'] / row['rtf']:.2f}"
            network = f"{row['network_rtf']:.4f}"
            network_versus_torch = f"{torch_row['network_rtf'] / row['network_rtf']:.2f}"
        wer = f"{100 * row['wer']:.2f}%" if row["wer"] is not None else "-"
        print(
            f"{row['backend']} | {row['threads']} | {row['rtf']:.4f} | {versus_sphinx} | {versus_torch} | "
            f"{network} | {network_versus_torch} | {row['peak_rss_mb']:.0f} | {wer}"
        )


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


if __name__ == "__main__":
    main()
