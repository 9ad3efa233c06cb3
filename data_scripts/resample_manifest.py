#!/usr/bin/env python3
"""Copy a manifest's audio at another sample rate (e.g. 8 kHz, as telephone audio), with a manifest
of the copies: to measure how a model does on such audio (`asr evaluate MODEL OUT_DIR/manifest.jsonl`).

    python data_scripts/resample_manifest.py MANIFEST OUT_DIR [--rate 8000]
"""

import argparse
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from asr.audio import load_audio
from asr.data import read_manifest, write_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", help="JSON-lines manifest (audio_filepath, duration, text)")
    parser.add_argument("out_dir", help="folder for the copies (numbered WAV files) and manifest.jsonl")
    parser.add_argument("--rate", type=int, default=8000, help="sample rate of the copies (default 8000)")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for number, utterance in enumerate(tqdm(read_manifest(args.manifest), desc="resample", unit="utt")):
        samples = load_audio(utterance.audio_filepath, args.rate)
        name = f"{number:06d}.wav"  # numbered: source names may repeat across folders
        sf.write(out / name, samples, args.rate, subtype="PCM_16")
        records.append({"audio_filepath": name, "duration": round(len(samples) / args.rate, 4), "text": utterance.text})
    write_manifest(out / "manifest.jsonl", records)
    print(f"{len(records)} utterances at {args.rate} Hz: {out / 'manifest.jsonl'}")


if __name__ == "__main__":
    main()
