"""Voice activity: which output frames of a recording hold speech (Silero VAD, bundled in its wheel).

A CTC model trained on speech hears fragments of words in noise it never heard alone (hum, hiss,
pink noise, the pauses of a recording); the energy gate (``decoding.silence_db``) only catches
near-digital silence. Frames the VAD calls non-speech are forced to blank before decoding, unless
they are loud (:func:`loud_stretches`): Silero was trained on people, and misses some voices the
model hears (one eSpeak variant's whole utterance gets speech probability 0.03, as low as noise).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

VAD_METHODS = ("silero", "off")
_VAD_RATE = 16000  # Silero's models run at 16 or 8 kHz


@lru_cache(maxsize=1)
def _silero():
    try:
        from silero_vad import load_silero_vad
    except ImportError:
        raise ValueError(
            "decoding.vad=silero needs the silero-vad package (pip install silero-vad), or set decoding.vad=off"
        ) from None
    # Its ONNX copy (in the same wheel) runs in ONNX Runtime about 20% faster than the TorchScript
    # one, with the same speech stretches (measured on LibriSpeech dev-clean)
    return load_silero_vad(onnx=True)


def speech_probabilities(audio: np.ndarray) -> list[float]:
    """Silero's speech probability for each 32 ms window of 16 kHz ``audio``, as its own
    ``get_speech_timestamps`` computes them (each window with the 64 samples before it, the model's
    state carried along), but calling the ONNX session directly: the same numbers, about 30% faster
    than the wrapper's per-window torch conversions (benchmarks/RESULTS.md)."""
    session = _silero().session
    window, context = 512, 64
    padded = np.zeros(-(-len(audio) // window) * window + context, np.float32)
    padded[context : context + len(audio)] = audio
    state = np.zeros((2, 1, 128), np.float32)
    rate = np.array(_VAD_RATE, np.int64)
    probabilities = []
    for start in range(0, len(padded) - context, window):
        chunk = padded[None, start : start + context + window]
        probability, state = session.run(None, {"input": chunk, "state": state, "sr": rate})
        probabilities.append(float(probability[0, 0]))
    return probabilities


def speech_stretches(samples: np.ndarray, sample_rate: int, threshold: float = 0.5) -> list[tuple[float, float]]:
    """(start, end) in seconds of each stretch Silero VAD finds speech in, with speech probability
    above ``threshold`` (silero-vad's own smoothing of the probabilities into stretches)."""
    from silero_vad import get_speech_timestamps_from_probs

    audio = samples
    if sample_rate != _VAD_RATE:
        import soxr

        audio = soxr.resample(samples, sample_rate, _VAD_RATE)
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    stretches = get_speech_timestamps_from_probs(
        speech_probabilities(audio),
        sampling_rate=_VAD_RATE,
        threshold=threshold,
        min_speech_duration_ms=100,
        speech_pad_ms=0,
        audio_length_samples=len(audio),
    )
    return [(stretch["start"] / _VAD_RATE, stretch["end"] / _VAD_RATE) for stretch in stretches]


def speech_mask(
    stretches: list[tuple[float, float]], frames: int, frame_seconds: float, pad_seconds: float = 0.3
) -> np.ndarray:
    """(frames,) bool: True for frames (``frame_seconds`` long) within ``pad_seconds`` of a stretch."""
    mask = np.zeros(frames, bool)
    for start, end in stretches:
        first = max(0, int((start - pad_seconds) / frame_seconds))
        last = min(frames, int(np.ceil((end + pad_seconds) / frame_seconds)))
        mask[first:last] = True
    return mask


def loud_stretches(
    samples: np.ndarray, sample_rate: int, above_floor_db: float, silence_db: float, hop_seconds: float = 0.01
) -> list[tuple[float, float]]:
    """(start, end) in seconds of each run of 10 ms steps louder than the recording's noise floor plus
    ``above_floor_db``: sound well above the background, speech or not. The floor is the 10th
    percentile step of those louder than ``silence_db`` (dBFS), so that digital silence around a
    recording does not pull it down; steady noise and hum stay within a few dB of it."""
    hop = max(1, round(hop_seconds * sample_rate))
    steps = len(samples) // hop
    if steps == 0:
        return []
    view = samples[: steps * hop].reshape(steps, hop)
    level = 10 * np.log10(np.einsum("ij,ij->i", view, view) / hop + 1e-24)
    audible = level[level > silence_db]
    if len(audible) == 0:
        return []
    loud = np.concatenate([[False], level > np.percentile(audible, 10) + above_floor_db, [False]])
    edges = np.flatnonzero(np.diff(loud.astype(np.int8)))  # run starts and ends, alternating
    return [
        (float(start * hop / sample_rate), float(end * hop / sample_rate))
        for start, end in zip(edges[::2], edges[1::2])
    ]
