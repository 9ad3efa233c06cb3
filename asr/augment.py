"""Training-data augmentation on waveforms: speed perturbation, reverberation, background noise,
telephone band.

Every random choice is drawn from :func:`item_rng`, a function of (seed, epoch, item) alone, so
that the batch sampler and every loader worker agree and a resumed run sees the same audio.
"""

from __future__ import annotations

import random
from pathlib import Path

import librosa
import numpy as np
from scipy.signal import fftconvolve

from .audio import find_audio_files, load_audio


def item_rng(seed: int, epoch: int, index: int, purpose: str = "") -> random.Random:
    """The random generator of item ``index`` in ``epoch`` for one ``purpose`` ("noise",
    "narrowband"; speed perturbation's is the bare key)."""
    key = f"{seed}/{epoch}/{index}"
    return random.Random(f"{purpose}/{key}" if purpose else key)


def perturbation_speed(speeds: list[float], seed: int, epoch: int, index: int) -> float:
    """The speed at which utterance ``index`` plays in ``epoch``: one of ``speeds`` (1.0 if none),
    a function of its arguments alone, so that the sampler and every loader worker agree."""
    if not speeds:
        return 1.0
    return item_rng(seed, epoch, index).choice(speeds)


NARROWBAND_RATE = 8000  # telephone audio: nothing above 4 kHz


def narrowband(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``audio`` as if recorded at :data:`NARROWBAND_RATE` and resampled to ``sample_rate``: same
    length, no band above 4 kHz."""
    low = librosa.resample(audio, orig_sr=sample_rate, target_sr=NARROWBAND_RATE, res_type="soxr_hq")
    back = librosa.resample(low, orig_sr=NARROWBAND_RATE, target_sr=sample_rate, res_type="soxr_hq")
    return np.pad(back[: len(audio)], (0, max(0, len(audio) - len(back))))


class NoiseMixer:
    """Adds a random stretch of a random noise recording at a random SNR to some utterances.

    Every choice depends only on (``seed``, epoch, index), as for speed perturbation, so loader
    workers agree and a resumed run mixes the same noise.
    """

    def __init__(
        self, folder: str | Path, probability: float, snr_db: list[float], sample_rate: int = 16000, seed: int = 0
    ):
        self.files = find_audio_files(folder)
        if not self.files:
            raise ValueError(f"{folder}: no audio files (data.noise_dir)")
        if len(snr_db) != 2 or snr_db[0] > snr_db[1]:
            raise ValueError(f"data.noise_snr_db must be [low, high], not {snr_db}")
        self.probability, self.snr_db, self.sample_rate, self.seed = probability, snr_db, sample_rate, seed

    def __call__(self, audio: np.ndarray, epoch: int, index: int) -> np.ndarray:
        rng = item_rng(self.seed, epoch, index, "noise")
        if rng.random() >= self.probability:
            return audio
        noise = load_audio(rng.choice(self.files), self.sample_rate)
        if len(noise) < len(audio):
            noise = np.tile(noise, -(-len(audio) // len(noise)))
        start = rng.randrange(len(noise) - len(audio) + 1)
        noise = noise[start : start + len(audio)]
        snr = rng.uniform(*self.snr_db)
        gain = np.sqrt((np.mean(audio**2) + 1e-10) / ((np.mean(noise**2) + 1e-10) * 10 ** (snr / 10)))
        return (audio + gain * noise).astype(np.float32)


DIRECT_TO_REVERBERANT_DB = (0.0, 10.0)  # a talker 1-2 m away in an ordinary room


def room_impulse_response(rt60: float, direct_to_reverberant_db: float, sample_rate: int, seed: int) -> np.ndarray:
    """A synthetic room's impulse response: the direct sound (1 at sample 0), then a diffuse tail of
    Gaussian noise whose level falls 60 dB in ``rt60`` seconds, scaled so that the direct sound has
    ``direct_to_reverberant_db`` more energy than the tail. No recorded responses exist here; a
    diffuse exponential tail is what statistical room acoustics predicts after the first reflections."""
    samples = max(2, round(rt60 * sample_rate))
    time = np.arange(1, samples) / sample_rate
    tail = np.random.default_rng(seed).standard_normal(samples - 1) * 10 ** (-3 * time / rt60)  # -60 dB at rt60
    tail *= np.sqrt(10 ** (-direct_to_reverberant_db / 10) / np.sum(tail**2))
    return np.concatenate([[1.0], tail]).astype(np.float32)


class Reverberator:
    """Convolves some utterances with a synthetic room (:func:`room_impulse_response`), its RT60
    drawn from ``rt60_seconds`` and its direct-to-reverberant ratio from
    :data:`DIRECT_TO_REVERBERANT_DB`; the result keeps the utterance's length and RMS level.
    Every choice depends only on (``seed``, epoch, index), as for the noise."""

    def __init__(self, probability: float, rt60_seconds: list[float], sample_rate: int = 16000, seed: int = 0):
        if len(rt60_seconds) != 2 or not 0 < rt60_seconds[0] <= rt60_seconds[1]:
            raise ValueError(f"data.reverb_rt60 must be [shortest, longest] seconds, not {rt60_seconds}")
        self.probability, self.rt60_seconds, self.sample_rate, self.seed = probability, rt60_seconds, sample_rate, seed

    def __call__(self, audio: np.ndarray, epoch: int, index: int) -> np.ndarray:
        rng = item_rng(self.seed, epoch, index, "reverb")
        if rng.random() >= self.probability:
            return audio
        rt60, direct_db = rng.uniform(*self.rt60_seconds), rng.uniform(*DIRECT_TO_REVERBERANT_DB)
        response = room_impulse_response(rt60, direct_db, self.sample_rate, rng.getrandbits(32))
        wet = fftconvolve(audio, response)[: len(audio)]
        gain = np.sqrt((np.mean(audio**2) + 1e-10) / (np.mean(wet**2) + 1e-10))
        return (gain * wet).astype(np.float32)


def speed_perturb(audio: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    """``audio`` played at ``speed``: read as if recorded at ``sample_rate * speed``, so tempo and
    pitch scale together, like another speaker."""
    if speed == 1.0:
        return audio
    return librosa.resample(audio, orig_sr=round(sample_rate * speed), target_sr=sample_rate, res_type="soxr_hq")


def is_narrowband(probability: float, seed: int, epoch: int, index: int) -> bool:
    """Whether item ``index`` is band-limited in ``epoch`` (a ``probability`` share of them)."""
    return bool(probability) and item_rng(seed, epoch, index, "narrowband").random() < probability
