"""Voice activity: which output frames of a recording hold speech (Silero VAD, bundled in its wheel).

A CTC model trained on speech hears fragments of words in noise it never heard alone (hum, hiss,
pink noise, the pauses of a recording); the energy gate (``decoding.silence_db``) only catches
near-digital silence. Frames the VAD calls non-speech are forced to blank before decoding.
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


def speech_stretches(samples: np.ndarray, sample_rate: int, threshold: float = 0.5) -> list[tuple[float, float]]:
    """(start, end) in seconds of each stretch Silero VAD finds speech in, with speech probability
    above ``threshold``."""
    import torch
    from silero_vad import get_speech_timestamps

    audio = samples
    if sample_rate != _VAD_RATE:
        import soxr

        audio = soxr.resample(samples, sample_rate, _VAD_RATE)
    with torch.inference_mode():
        stretches = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
            _silero(),
            threshold=threshold,
            sampling_rate=_VAD_RATE,
            min_speech_duration_ms=100,
            speech_pad_ms=0,
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
