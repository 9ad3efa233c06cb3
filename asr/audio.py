"""Audio loading: any file soundfile or librosa reads becomes mono float32 at the model's rate."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr

from .files import library_messages

log = logging.getLogger(__name__)

# libmpg123 (inside libsndfile) reports each damaged MP3 frame on stderr, several lines a file:
# they are gathered into one warning that names the file
_MPEG_SUFFIXES = (".mp3", ".mp2", ".mpga")
_MPG123_MESSAGE = r"\[src/libmpg123/[^\]\n]*\][^\n]*\n?"

# Suffixes a folder is searched for (``find_audio_files``, LibriSpeech folders); any readable file works
# when named directly.
AUDIO_SUFFIXES = (  # the audio files a folder holds; where one recording comes in several, the first wins
    ".flac",
    ".wav",
    ".mp3",
    ".ogg",
    ".oga",
    ".opus",
    ".m4a",
    ".aac",
    ".aif",
    ".aiff",
    ".au",
    ".wma",
    ".webm",
)

_BLOCK_FRAMES = 1 << 18  # frames read at a time: an hour of 48 kHz audio never sits in memory at its own rate

# Rates outside this range are no real recording: a header claiming 1 Hz would make a 20 KB file
# hours of 16 kHz audio (gigabytes of memory) once resampled.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384000
# Audio longer than this is refused before it is decoded (1.4 GB of float32 samples at 16 kHz);
# ``max_seconds`` raises or lowers it.
DEFAULT_MAX_AUDIO_SECONDS = 6 * 3600.0


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""


def check_sample_rate(rate: object, source: str) -> int:
    """``rate`` as an int if it is a real recording's rate (1 kHz to 384 kHz), else :class:`AudioError`."""
    if isinstance(rate, float) and rate.is_integer():
        rate = int(rate)
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, np.integer))
        or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE
    ):
        raise AudioError(f"{source}: sample rate {rate!r} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    return int(rate)


def _check_duration(seconds: float, max_seconds: float, source: str) -> None:
    if seconds > max_seconds:
        raise AudioError(
            f"{source}: {seconds / 3600:.1f} h of audio is longer than "
            f"the {max_seconds / 3600:.1f} h allowed (max_audio_seconds)"
        )


def _truncation(sound: sf.SoundFile, frames_read: int) -> str | None:
    """Why ``sound`` looks cut short, or None: a WAV-family data chunk the header says is longer
    than the file holds (libsndfile clamps it silently, but logs "data : N (should be M)"), or
    fewer frames decoded than the header promised (an MP3's Xing length, say)."""
    found = re.search(r"^data\s*:\s*(\d+) \(should be (\d+)\)", sound.extra_info, re.MULTILINE)
    if found:
        declared, present = int(found.group(1)), int(found.group(2))
        # 0 and 0xFFFFFFFF are how streaming writers say "length unknown"; a pad byte is not a frame
        if declared < 0xFFFFFFF0 and declared - present >= max(sound.channels * 2, 4):
            return f"the header promises {declared} bytes of audio, the file holds {present}"
    if sound.frames > 0 and frames_read < sound.frames - max(1152, sound.frames // 100):
        return f"the header promises {sound.frames} frames, {frames_read} could be decoded"
    return None


def load_audio(
    path: str | Path,
    sample_rate: int = 16000,
    max_seconds: float = DEFAULT_MAX_AUDIO_SECONDS,
    allow_truncated: bool = False,
) -> np.ndarray:
    """Read ``path``, down-mix to mono and resample to ``sample_rate``.

    Returns float32 samples. Files soundfile reads are decoded and resampled block by block, so
    memory holds only the result (230 MB per hour at 16 kHz). Raises :class:`AudioError` for a
    missing file, a file that is not audio, a truncated or corrupt file, zero-length audio,
    NaN/infinite samples, a sample rate outside 1-384 kHz, or audio longer than ``max_seconds``.
    A file shorter than its header says is an error unless ``allow_truncated`` (then what is
    there is returned).
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not path.is_file():  # a FIFO, /dev/stdin or a device: reading it could block or never end
        raise AudioError(f"{path}: not a regular file (a FIFO, device or socket), so not read as audio")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    if path.suffix.lower() not in _MPEG_SUFFIXES:
        return _read(path, sample_rate, max_seconds, allow_truncated)
    with library_messages(_MPG123_MESSAGE) as damaged:
        samples = _read(path, sample_rate, max_seconds, allow_truncated)
    if damaged:
        log.warning("%s: %d damaged MP3 frame(s), decoded as they could be (%s)", path, len(damaged), damaged[0])
    return samples


def _read(path: Path, sample_rate: int, max_seconds: float, allow_truncated: bool) -> np.ndarray:
    """:func:`load_audio` of a checked path: soundfile block by block, else librosa."""
    try:
        sound = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        return _load_with_librosa(path, sample_rate, sf_error, max_seconds)
    with sound:
        check_sample_rate(sound.samplerate, str(path))
        _check_duration(max(sound.frames, 0) / sound.samplerate, max_seconds, str(path))
        resampler = None
        if sound.samplerate != sample_rate:
            resampler = soxr.ResampleStream(sound.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
        # Filled in place (grown if the header's length was short): no second copy at the end.
        samples = np.empty(int(max(sound.frames, 0) * sample_rate / sound.samplerate) + 4096, np.float32)
        filled = frames_read = 0
        try:
            while True:
                block = sound.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                frames_read += len(block)
                last = len(block) < _BLOCK_FRAMES
                mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
                if not np.isfinite(mono).all():
                    raise AudioError(f"{path}: audio contains NaN or infinite samples")
                piece = resampler.resample_chunk(mono, last=last) if resampler else mono
                if filled + len(piece) > len(samples):
                    samples = np.resize(samples, int(1.5 * (filled + len(piece))))
                samples[filled : filled + len(piece)] = piece
                filled += len(piece)
                _check_duration(filled / sample_rate, max_seconds, str(path))  # a header may understate the length
                if last:
                    break
        except sf.LibsndfileError as error:
            raise AudioError(f"{path}: truncated or corrupt audio ({error})") from None
        cut_short = None if allow_truncated else _truncation(sound, frames_read)
        if cut_short:
            raise AudioError(
                f"{path}: truncated audio: {cut_short} (allow_truncated / --allow-truncated to use what is there)"
            )
    samples = samples[:filled]
    if samples.size == 0:
        raise AudioError(f"{path}: zero-length audio")
    return samples


def _first_line(error: object) -> str:
    """An error's message without soundfile's repetition of the path ("Error opening 'x.wav': ...")."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text.split("': ", 1)[1] if text.startswith("Error opening '") and "': " in text else text


def _load_with_librosa(path: Path, sample_rate: int, sf_error: Exception, max_seconds: float) -> np.ndarray:
    """soundfile cannot read some containers (e.g. MP4/M4A); librosa falls back to audioread."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples, file_rate = librosa.load(path, sr=None, mono=False, dtype=np.float32)
    except Exception as error:  # noqa: BLE001 - any failure here means "not audio we can read"
        fallback = f"{type(error).__name__}: {error}" if str(error) else "no other decoder reads it either"
        raise AudioError(f"{path}: not a readable audio file ({_first_line(sf_error)}; {fallback})") from None
    return prepare_samples(np.atleast_2d(samples), file_rate, sample_rate, source=str(path), max_seconds=max_seconds)


def prepare_samples(
    samples: np.ndarray,
    file_rate: int,
    sample_rate: int = 16000,
    source: str = "<array>",
    max_seconds: float = DEFAULT_MAX_AUDIO_SECONDS,
) -> np.ndarray:
    """Validate an array of audio, down-mix it to mono and resample it to ``sample_rate``.

    1-D arrays are samples; a 2-D array's shorter axis is its channels, so both (channels,
    samples), librosa's layout, and (samples, channels), soundfile's, work. Integer arrays are
    scaled to [-1, 1) by their type's range (int16 by 32768); floats are taken as they are."""
    file_rate = check_sample_rate(file_rate, source)
    samples = np.asarray(samples)
    if np.issubdtype(samples.dtype, np.integer):
        info = np.iinfo(samples.dtype)
        middle = (int(info.max) + int(info.min) + 1) / 2  # 0 for signed types, 128 for uint8
        samples = (samples.astype(np.float64) - middle) / (int(info.max) + 1 - middle)
    elif not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(f"{source}: expected integer or floating-point samples, got {samples.dtype}")
    samples = samples.astype(np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=0 if samples.shape[0] <= samples.shape[1] else 1)
    elif samples.ndim != 1:
        raise AudioError(f"{source}: expected 1-D or 2-D (channels and samples) audio, got shape {samples.shape}")
    _check_duration(samples.size / file_rate, max_seconds, source)
    if samples.size == 0:
        raise AudioError(f"{source}: zero-length audio")
    if not np.isfinite(samples).all():
        raise AudioError(f"{source}: audio contains NaN or infinite samples")
    if file_rate != sample_rate:  # the same resampler as load_audio's, so arrays and files agree
        samples = soxr.ResampleStream(file_rate, sample_rate, 1, dtype="float32", quality="HQ").resample_chunk(
            samples, last=True
        )
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
