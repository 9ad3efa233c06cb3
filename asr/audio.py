"""Audio loading: any file soundfile or librosa reads becomes mono float32 at the model's rate."""

from __future__ import annotations

import warnings
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr

# Suffixes a folder is searched for (``find_audio_files``); any readable file works when named directly.
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff", ".au", ".wma", ".webm"})

_BLOCK_FRAMES = 1 << 18  # frames read at a time: an hour of 48 kHz audio never sits in memory at its own rate


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Read ``path``, down-mix to mono and resample to ``sample_rate``.

    Returns float32 samples. Files soundfile reads are decoded and resampled block by block, so
    memory holds only the result (230 MB per hour at 16 kHz). Raises :class:`AudioError` for a
    missing file, a file that is not audio, a truncated or corrupt file, zero-length audio, or
    NaN/infinite samples.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        sound = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        return _load_with_librosa(path, sample_rate, sf_error)
    with sound:
        resampler = None
        if sound.samplerate != sample_rate:
            resampler = soxr.ResampleStream(sound.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
        # Filled in place (grown if the header's length was short): no second copy at the end.
        samples = np.empty(int(max(sound.frames, 0) * sample_rate / sound.samplerate) + 4096, np.float32)
        filled = 0
        try:
            while True:
                block = sound.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                last = len(block) < _BLOCK_FRAMES
                mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
                if not np.isfinite(mono).all():
                    raise AudioError(f"{path}: audio contains NaN or infinite samples")
                piece = resampler.resample_chunk(mono, last=last) if resampler else mono
                if filled + len(piece) > len(samples):
                    samples = np.resize(samples, int(1.5 * (filled + len(piece))))
                samples[filled : filled + len(piece)] = piece
                filled += len(piece)
                if last:
                    break
        except sf.LibsndfileError as error:
            raise AudioError(f"{path}: truncated or corrupt audio ({error})") from None
    samples = samples[:filled]
    if samples.size == 0:
        raise AudioError(f"{path}: zero-length audio")
    return samples


def _load_with_librosa(path: Path, sample_rate: int, sf_error: Exception) -> np.ndarray:
    """soundfile cannot read some containers (e.g. MP4/M4A); librosa falls back to audioread."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples, file_rate = librosa.load(path, sr=None, mono=False, dtype=np.float32)
    except Exception as error:  # noqa: BLE001 - any failure here means "not audio we can read"
        raise AudioError(f"{path}: not a readable audio file ({sf_error}; {type(error).__name__}: {error})") from None
    return prepare_samples(np.atleast_2d(samples), file_rate, sample_rate, source=str(path))


def prepare_samples(samples: np.ndarray, file_rate: int, sample_rate: int = 16000, source: str = "<array>") -> np.ndarray:
    """Validate samples shaped (channels, n) or (n,), down-mix to mono and resample to ``sample_rate``."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=0)
    elif samples.ndim != 1:
        raise AudioError(f"{source}: expected 1-D or (channels, samples) audio, got shape {samples.shape}")
    if samples.size == 0:
        raise AudioError(f"{source}: zero-length audio")
    if not np.isfinite(samples).all():
        raise AudioError(f"{source}: audio contains NaN or infinite samples")
    if file_rate != sample_rate:  # the same resampler as load_audio's, so arrays and files agree
        samples = soxr.ResampleStream(file_rate, sample_rate, 1, dtype="float32", quality="HQ").resample_chunk(samples, last=True)
    return np.ascontiguousarray(samples, dtype=np.float32)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds, read from the file header where possible (no decoding)."""
    try:
        info = sf.info(path)
        if info.frames > 0:
            return info.frames / info.samplerate
    except (sf.LibsndfileError, RuntimeError):
        pass
    try:
        return float(librosa.get_duration(path=path))
    except Exception as error:  # noqa: BLE001
        raise AudioError(f"{path}: cannot read duration ({type(error).__name__}: {error})") from None


def find_audio_files(folder: str | Path) -> list[Path]:
    """Audio files (by suffix) anywhere under ``folder``, sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
