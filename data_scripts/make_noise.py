#!/usr/bin/env python3
"""Write seeded noise recordings (white, pink and brown noise, a mains hum) into a folder, for
`data.noise_dir` when no recorded noise is at hand (the LibriSpeech recipe's synthetic phrases).

    python data_scripts/make_noise.py OUT_DIR [--seconds 60] [--seed 0]
"""

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
KINDS = ("white", "pink", "brown", "hum")


def noise(kind: str, seconds: float, seed: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``seconds`` of ``kind`` noise at -20 dBFS RMS: white, pink (power falling as 1/f), brown
    (as 1/f^2), or hum (50 Hz and its harmonics over faint white noise)."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * sample_rate)
    white = rng.standard_normal(samples)
    if kind in ("pink", "brown"):  # white noise shaped in the frequency domain
        spectrum = np.fft.rfft(white)
        spectrum[1:] /= np.arange(1, len(spectrum)) ** (0.5 if kind == "pink" else 1.0)
        spectrum[0] = 0
        audio = np.fft.irfft(spectrum, samples)
    elif kind == "hum":
        time = np.arange(samples) / sample_rate
        audio = sum(np.sin(2 * np.pi * 50 * k * time) / k for k in (1, 2, 3)) + 0.01 * white
    elif kind == "white":
        audio = white
    else:
        raise ValueError(f"noise kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return (audio * 0.1 / np.sqrt(np.mean(audio**2))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="folder for white.wav, pink.wav, brown.wav and hum.wav")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each recording (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for number, kind in enumerate(KINDS):
        sf.write(out / f"{kind}.wav", noise(kind, args.seconds, args.seed + number), SAMPLE_RATE, subtype="FLOAT")
    print(f"{len(KINDS)} noise recordings of {args.seconds:g} s in {out}")


if __name__ == "__main__":
    main()
