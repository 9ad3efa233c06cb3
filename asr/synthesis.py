"""Offline speech synthesis with eSpeak NG (from the ``espeakng-loader`` wheel).

Used to make the embedded digits corpus and the test audio. eSpeak NG is a C
library with global state, so one process talks to it through this module only.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing.util
import random
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 3, 4
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_PHONEMES_IPA = 0x02
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock = threading.Lock()


def _overlay_data_dir() -> Path:
    """A private copy of the eSpeak NG data folder (symbolic links) whose variant folder takes new files."""
    import espeakng_loader

    source = Path(espeakng_loader.get_data_path())
    overlay = Path(tempfile.mkdtemp(prefix="asr-espeak-")) / "espeak-ng-data"
    overlay.mkdir()
    for entry in source.iterdir():
        if entry.name != "voices":
            (overlay / entry.name).symlink_to(entry)
    (overlay / "voices").mkdir()
    for entry in (source / "voices").iterdir():
        if entry.name != "!v":
            (overlay / "voices" / entry.name).symlink_to(entry)
    (overlay / "voices" / "!v").mkdir()
    for entry in (source / "voices" / "!v").iterdir():
        (overlay / "voices" / "!v" / entry.name).symlink_to(entry)
    return overlay


class _ESpeak:
    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.data_dir = _overlay_data_dir()
        # A multiprocessing exit finalizer, not atexit: it runs at interpreter exit and also when a
        # multiprocessing child ends (by os._exit, which skips atexit), only in the process that made the folder.
        self.remove_data_dir = multiprocessing.util.Finalize(
            None, shutil.rmtree, args=(self.data_dir.parent,), kwargs={"ignore_errors": True}, exitpriority=0
        )
        self._data_path = str(self.data_dir).encode()  # kept alive: the library may hold the pointer
        self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_path, 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise (data at {self.data_dir})")
        self.chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self.lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]

    def _collect(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0


@lru_cache(maxsize=1)
def _engine() -> _ESpeak:
    return _ESpeak()


def shutdown_engine() -> None:
    """Shut eSpeak NG down and remove this process's private data folder, added variants with it; the
    next call starts afresh.

    The folder is also removed when the process ends normally, a multiprocessing child included; a
    worker that its pool may terminate (``Pool.__exit__`` does) calls this when its work is done.
    """
    if _engine.cache_info().currsize:
        engine = _engine()
        _engine.cache_clear()
        with _lock:
            engine.lib.espeak_Terminate()
        engine.remove_data_dir()


def voice_names(languages: tuple[str, ...] = ("en",)) -> list[str]:
    """Names of the installed eSpeak NG voices under ``lang/gmw`` whose name starts with one of ``languages``."""
    import espeakng_loader

    lang_dir = Path(espeakng_loader.get_data_path()) / "lang" / "gmw"
    return sorted(p.name for p in lang_dir.iterdir() if p.name.startswith(languages))


def variant_names() -> list[str]:
    """Names of the installed eSpeak NG voice variants (``voices/!v``)."""
    import espeakng_loader

    return sorted(p.name for p in (Path(espeakng_loader.get_data_path()) / "voices" / "!v").iterdir())


def add_variant(name: str, definition: str) -> None:
    """Make a voice variant (eSpeak's ``voices/!v`` file format) usable as ``"<voice>+<name>"``."""
    if not name.isidentifier():
        raise ValueError(f"variant name {name!r} must be letters, digits and underscores")
    (_engine().data_dir / "voices" / "!v" / name).write_text(definition)


def random_variant(rng: random.Random) -> str:
    """A random voice-variant definition spanning the settings eSpeak's own variants use:
    vocal-tract size (all formants scaled together), pitch, voice quality, syllable timing,
    intonation, robotic echo and, for a third of them, one of eSpeak's Klatt synthesizers.
    Used to widen the range of training voices.
    """
    scale = rng.uniform(0.8, 1.25)
    base_pitch = rng.randint(60, 300)
    lines = ["language variant", f"pitch {base_pitch} {base_pitch + rng.randint(20, 150)}"]
    for formant in range(9):
        frequency = round(100 * scale * rng.uniform(0.92, 1.08))
        lines.append(f"formant {formant} {frequency} {rng.randint(60, 150)} {rng.randint(60, 150)}")
    lines += [
        f"flutter {rng.randint(0, 20)}",
        f"roughness {rng.randint(0, 5)}",
        f"voicing {rng.randint(30, 220)}",
        f"consonants {rng.randint(30, 130)} {rng.randint(40, 120)}",
        f"breath {rng.choice([0, 0, 0, rng.randint(10, 100)])}",
    ]
    if rng.random() < 0.3:  # clipped unstressed syllables: much faster, choppier speech
        add = (
            [round(v * rng.uniform(0.7, 1.3)) for v in (130, 140, 140, 100)]
            + [0, 0]
            + [round(v * rng.uniform(0.7, 1.3)) for v in (130, 160)]
        )
        lines += ["stressLength 0 1 2 3 4 5 6 7", "stressAdd " + " ".join(map(str, add))]
    if rng.random() < 0.5:
        lines.append(f"intonation {rng.choice([1, 2, 3, 10])}")
    echo = rng.random()
    if echo < 0.15:  # a very short, very loud echo sounds metallic, like eSpeak's robot voices
        lines.append(f"echo {rng.randint(5, 40)} {rng.randint(2000, 10000)}")
    elif echo < 0.35:  # a distinct echo, from faint to as loud as the voice itself
        # eSpeak's echo buffer holds 5500 samples (about 250 ms): longer delays overrun it
        lines.append(f"echo {rng.randint(50, 200)} {round(math.exp(rng.uniform(math.log(5), math.log(500))))}")
    if rng.random() < 1 / 3:
        lines.append(f"klatt {rng.randint(1, 6)}")
    return "\n".join(lines) + "\n"


# eSpeak's own robotic variants (RicishayMax2/3, anika, robosoft...) shape the spectrum with this
# tone response; random_variant never draws it
_ROBOTIC_TONE = "tone 100 255 600 70 1200 22 2000 66 3000 12"


def robotic_lines(rng: random.Random) -> str:
    """Variant lines that, appended to a definition (eSpeak keeps a keyword's last value), make
    the voice robotic the way eSpeak's own robot variants are, all together: a long loud echo or a
    very short metallic one, strong voicing, loud consonants, clipped syllables and their tone
    response."""
    if rng.random() < 0.7:  # eSpeak's echo buffer holds about 250 ms
        echo = f"echo {rng.randint(100, 240)} {rng.randint(300, 1000)}"
    else:
        echo = f"echo {rng.randint(5, 40)} {rng.randint(2000, 10000)}"
    lines = [
        echo,
        f"voicing {rng.randint(120, 220)}",
        f"consonants {rng.randint(90, 130)} {rng.randint(90, 130)}",
        f"roughness {rng.randint(3, 5)}",
        "intonation 10",
        "stressLength 0 1 2 3 4 5 6 7",
        "stressAdd " + " ".join(str(round(v * rng.uniform(0.85, 1.15))) for v in (130, 140, 140, 100, 0, 0, 130, 160)),
        "stressAmp 16 16 24 24 16 16 20 24",
        _ROBOTIC_TONE,
    ]
    return "\n".join(lines) + "\n"


def synthesize(
    text: str, voice: str = "en-US", rate: int = 175, pitch: int = 50, pitch_range: int = 50, seed: int | None = None
) -> tuple[np.ndarray, int]:
    """Speak ``text`` and return (float32 samples in [-1, 1], sample rate).

    ``voice`` is an eSpeak NG voice name, optionally with a variant (``"en-GB-x-rp+f3"``);
    ``rate`` is in words per minute, ``pitch`` and ``pitch_range`` are 0-100. ``seed`` seeds
    eSpeak's own random jitter first; the output then depends only on the arguments and on what
    this process synthesized before (eSpeak keeps state between calls), so a fresh process that
    makes the same calls in the same order makes the same samples.
    """
    engine = _engine()
    variant = voice.partition("+")[2]
    if variant and not (engine.data_dir / "voices" / "!v" / variant).is_file():
        raise ValueError(f"unknown eSpeak NG voice variant {variant!r} in {voice!r}")
    with _lock:
        if engine.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown eSpeak NG voice {voice!r}")
        engine.lib.espeak_SetParameter(_ESPEAK_RATE, int(rate), 0)
        engine.lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
        engine.lib.espeak_SetParameter(_ESPEAK_RANGE, int(pitch_range), 0)
        if seed is not None:
            engine.lib.espeak_ng_SetRandSeed(ctypes.c_long(seed & 0x7FFFFFFF))
        engine.chunks = []
        encoded = text.encode()
        status = engine.lib.espeak_Synth(
            encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
        )
        if status != 0:
            raise RuntimeError(f"eSpeak NG failed to speak {text!r} (status {status})")
        engine.lib.espeak_Synchronize()
        samples = np.concatenate(engine.chunks) if engine.chunks else np.zeros(0, np.int16)
    return samples.astype(np.float32) / 32768.0, engine.sample_rate


def phonemes(text: str, voice: str = "en-us") -> str:
    """``text``'s pronunciation in IPA (UTF-8, with stress marks) as eSpeak NG's ``voice`` says it;
    clauses joined by spaces. What Piper voices (:mod:`asr.piper_voice`) are trained to read."""
    engine = _engine()
    with _lock:
        if engine.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown eSpeak NG voice {voice!r}")
        buffer = ctypes.create_string_buffer(text.encode())
        position = ctypes.c_void_p(ctypes.addressof(buffer))
        clauses = []
        while position.value:  # eSpeak moves it past each clause, to NULL at the end
            clauses.append(
                engine.lib.espeak_TextToPhonemes(ctypes.byref(position), _ESPEAK_CHARS_UTF8, _ESPEAK_PHONEMES_IPA)
            )
    return " ".join(c.decode() for c in clauses if c)
