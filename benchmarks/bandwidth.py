"""A model on audio as it is and on the same audio cut to a narrower band: greedy WER and CER of
each manifest both ways, side by side, so that a model trained on band-limited audio (LibriSpeech's
MP3s stop near 6 kHz) is seen to hear full-band recordings as well as band-limited ones.

    python benchmarks/bandwidth.py MODEL MANIFEST [MANIFEST ...] [--cutoff 5500] [--limit N]

The cut copies are the files resampled to twice ``--cutoff`` and back (soxr, very high quality),
kept as float samples (no quantisation noise above the cut, as in a decoded MP3). The figures, with
command, machine and date, go in the RESULTS file of the recipe that trained MODEL.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py, beside this script


def band_limited_copies(utterances: list, folder: Path, cutoff: float, sample_rate: int) -> list:
    """``utterances`` with their audio cut at ``cutoff`` Hz, written to ``folder``."""
    import dataclasses

    import soundfile as sf
    import soxr

    from asr.audio import load_audio

    copies = []
    for i, utterance in enumerate(utterances):
        samples = load_audio(utterance.audio_filepath, sample_rate)
        low = soxr.resample(samples, sample_rate, 2 * cutoff, quality="VHQ")
        back = soxr.resample(low, 2 * cutoff, sample_rate, quality="VHQ")[: len(samples)]
        path = folder / f"{i:06d}.wav"
        sf.write(path, back, sample_rate, subtype="FLOAT")
        copies.append(dataclasses.replace(utterance, audio_filepath=path))
    return copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("manifests", type=Path, nargs="+")
    parser.add_argument("--cutoff", type=float, default=5500.0, help="the narrower band's top, Hz")
    parser.add_argument("--limit", type=int, default=0, help="only the first N utterances of each manifest")
    args = parser.parse_args()

    from asr.data import read_manifest
    from asr.evaluate import decode_utterances
    from asr.metrics import error_rates
    from asr.recognizer import load_model

    recognizer = load_model(args.model, device="cpu")
    print(f"machine: {cpu_name()}; date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", file=sys.stderr)
    print(f"manifest\tutterances\tas it is: WER, CER\tcut at {args.cutoff:g} Hz: WER, CER\tCER difference")
    for manifest in args.manifests:
        utterances = read_manifest(manifest)[: args.limit or None]
        references = [u.text for u in utterances]
        with tempfile.TemporaryDirectory() as folder:
            cut = band_limited_copies(utterances, Path(folder), args.cutoff, recognizer.sample_rate)
            rates = [error_rates(references, decode_utterances(recognizer, u)) for u in (utterances, cut)]
        print(
            f"{manifest}\t{len(utterances)}\t{100 * rates[0].wer:.2f}%, {100 * rates[0].cer:.2f}%"
            f"\t{100 * rates[1].wer:.2f}%, {100 * rates[1].cer:.2f}%\t{100 * (rates[0].cer - rates[1].cer):+.2f}"
        )


if __name__ == "__main__":
    main()
