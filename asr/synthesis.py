"""Offline speech synthesis with eSpeak NG (from the ``espeakng-loader`` wheel).

Used to make the embedded digits corpus and the test audio. eSpeak NG is a C
library with global state, so one process talks to it through this module only.
"""

from __future__ import annotations

import ctypes
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 3, 4
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock = threading.Lock()


class _ESpeak:
    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_path = espeakng_loader.get_data_path().encode()
        self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise (data at {data_path.decode()})")
        self.chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]

    def _collect(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0


@lru_cache(maxsize=1)
def _engine() -> _ESpeak:
    return _ESpeak()


def voice_names(languages: tuple[str, ...] = ("en",)) -> list[str]:
    """Names of the installed eSpeak NG voices under ``lang/gmw`` whose name starts with one of ``languages``."""
    import espeakng_loader

    lang_dir = Path(espeakng_loader.get_data_path()) / "lang" / "gmw"
    return sorted(p.name for p in lang_dir.iterdir() if p.name.startswith(languages))


def variant_names() -> list[str]:
    """Names of the installed eSpeak NG voice variants (``voices/!v``)."""
    import espeakng_loader

    return sorted(p.name for p in (Path(espeakng_loader.get_data_path()) / "voices" / "!v").iterdir())


def synthesize(text: str, voice: str = "en-US", rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> tuple[np.ndarray, int]:
    """Speak ``text`` and return (float32 samples in [-1, 1], sample rate).

    ``voice`` is an eSpeak NG voice name, optionally with a variant (``"en-GB-x-rp+f3"``);
    ``rate`` is in words per minute, ``pitch`` and ``pitch_range`` are 0-100.
    """
    engine = _engine()
    with _lock:
        if engine.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown eSpeak NG voice {voice!r}")
        engine.lib.espeak_SetParameter(_ESPEAK_RATE, int(rate), 0)
        engine.lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
        engine.lib.espeak_SetParameter(_ESPEAK_RANGE, int(pitch_range), 0)
        engine.chunks = []
        encoded = text.encode()
        status = engine.lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"eSpeak NG failed to speak {text!r} (status {status})")
        engine.lib.espeak_Synchronize()
        samples = np.concatenate(engine.chunks) if engine.chunks else np.zeros(0, np.int16)
    return samples.astype(np.float32) / 32768.0, engine.sample_rate
