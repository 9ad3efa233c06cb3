"""Transcribing audio of any length: files or arrays in, text with timed segments out, in input order.

Inputs are read a few ahead in background threads, long ones cut into chunks (``chunking.py``),
the chunks of several inputs decoded in batches, non-speech frames silenced (energy gate and
voice activity), and the words decoded, timed and grouped into segments (``timing.py``).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Union

import numpy as np
import torch
from tqdm import tqdm

from .audio import AudioError, load_audio, prepare_samples
from .chunking import Chunk, Item, Recognizer, decode_chunks, plan_chunks, plan_regions, stitched_log_probs
from .config import DecodingConfig
from .decoding import align_words
from .results import Segment, Transcription, Word
from .text import normalize_text
from .timing import align_segments, make_segments, refine_word_edges, words_to_transcription
from .vad import VAD_METHODS, loud_stretches, speech_mask, speech_stretches

__all__ = [
    "AudioInput",
    "Segment",
    "Transcription",
    "Word",
    "align",
    "make_segments",
    "model_outputs",
    "plan_regions",
    "refine_word_edges",
    "silent_frames",
    "speech_log_probs",
    "stitched_log_probs",
    "transcribe",
    "transcribe_log_probs",
    "transcribe_stream",
    "words_to_transcription",
]

AudioInput = Union[str, Path, np.ndarray, torch.Tensor]


def _read_input(
    recognizer: Recognizer, index: int, item: AudioInput, sample_rate: int | None, config: DecodingConfig
) -> tuple[str, np.ndarray]:
    max_seconds = config.max_audio_seconds
    if isinstance(item, (str, Path)):
        return str(item), load_audio(item, recognizer.sample_rate, max_seconds, config.allow_truncated)
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    if isinstance(item, np.ndarray):
        source = f"<array {index}>"
        file_rate = recognizer.sample_rate if sample_rate is None else sample_rate
        return source, prepare_samples(item, file_rate, recognizer.sample_rate, source, max_seconds)
    raise AudioError(f"input {index}: expected a path, a numpy array or a torch tensor, got {type(item).__name__}")


def _loaded(
    recognizer: Recognizer,
    inputs: list[AudioInput],
    sample_rate: int | None,
    config: DecodingConfig,
    lookahead: int = 4,
) -> Iterator[tuple[int, str, np.ndarray | AudioError]]:
    """Inputs read in two background threads, a few ahead of use, yielded in input order."""
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for index, item in enumerate(inputs):
            pending.append((index, item, pool.submit(_read_input, recognizer, index, item, sample_rate, config)))
            while len(pending) > lookahead or (pending and index == len(inputs) - 1):
                done_index, done_item, future = pending.popleft()
                try:
                    source, samples = future.result()
                    yield done_index, source, samples
                except AudioError as error:
                    yield done_index, str(done_item), error


def model_outputs(
    recognizer: Recognizer,
    inputs: list[AudioInput],
    batch_size: int = 16,
    sample_rate: int | None = None,
    config: DecodingConfig | None = None,
    progress: bool = False,
) -> Iterator[Item | Transcription]:
    """Run the model on ``inputs`` (chunked as ``config`` says, default the model's decoding config)
    and yield, in input order as soon as its batch is done, an :class:`Item` whose ``log_probs``
    (frames, vocab) cover the whole input, or a :class:`Transcription` with ``error`` set for an
    input that cannot be read."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
    config = config or recognizer.config.decoding
    group: list[Item | Transcription] = []
    chunks: list[Chunk] = []
    bar = tqdm(total=len(inputs), desc="transcribe", unit="file", disable=not progress)

    def flush() -> Iterator[Item | Transcription]:
        decode_chunks(recognizer, chunks, batch_size)
        for entry in group:
            yield entry
            bar.update(1)
        group.clear()
        chunks.clear()

    for index, source, samples in _loaded(recognizer, inputs, sample_rate, config):
        if isinstance(samples, AudioError):
            group.append(Transcription(source=source, error=str(samples)))
        else:
            item = Item(index, source, samples)
            chunks += plan_chunks(recognizer, item, config)
            group.append(item)
        if len(chunks) >= 4 * batch_size:  # enough to sort into batches of similar length
            yield from flush()
    yield from flush()
    bar.close()


def transcribe_stream(
    recognizer: Recognizer,
    inputs: list[AudioInput],
    batch_size: int = 16,
    sample_rate: int | None = None,
    config: DecodingConfig | None = None,
    progress: bool = False,
) -> Iterator[Transcription]:
    """Transcribe ``inputs`` and yield one :class:`Transcription` per input, in input order, as soon
    as it is done. Inputs that cannot be read give a result with ``error`` set."""
    config = config or recognizer.config.decoding
    for entry in model_outputs(recognizer, inputs, batch_size, sample_rate, config, progress):
        yield entry if isinstance(entry, Transcription) else _finish(recognizer, entry, config)


def silent_frames(
    samples: np.ndarray, frame_samples: int, frames: int, silence_db: float, margin: int = 5
) -> np.ndarray:
    """(frames,) bool: True where the audio within ``margin`` output frames either side is quieter
    than ``silence_db`` dBFS (RMS). A model never trained on digital silence may hear words in it."""
    whole = min(len(samples) // frame_samples, frames)
    view = samples[: whole * frame_samples].reshape(whole, frame_samples)  # a view: no copy of long audio
    power = np.zeros(frames, np.float64)
    power[:whole] = np.einsum("ij,ij->i", view, view) / frame_samples
    tail = samples[whole * frame_samples :]
    power[whole:] = float(np.mean(np.square(tail))) if len(tail) else 0.0
    quiet = 10 * np.log10(power + 1e-24) < silence_db
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(quiet, margin, constant_values=True), 2 * margin + 1)
    return windows.all(axis=1)


def _finish(recognizer: Recognizer, item: Item, config: DecodingConfig) -> Transcription:
    return transcribe_log_probs(recognizer, item.source, item.samples, item.log_probs, config, item.speech)


def speech_log_probs(
    recognizer: Recognizer,
    samples: np.ndarray,
    log_probs: np.ndarray,
    config: DecodingConfig,
    speech: list[tuple[float, float]] | None = None,
) -> tuple[torch.Tensor, list[tuple[float, float]] | None]:
    """``log_probs`` (frames, vocab; changed in place) with the frames in silence, or that the
    voice-activity detector calls non-speech (its ``speech`` stretches, found here unless given)
    and are not loud (``decoding.vad_loud_db``), forced to blank: what every decoder of a
    transcription sees. Returns them as a tensor, and the stretches kept as speech (None without
    voice activity)."""
    silent = silent_frames(samples, recognizer.frame_samples, len(log_probs), config.silence_db)
    if config.vad == "silero":
        rate, frame_seconds = recognizer.sample_rate, recognizer.frame_seconds
        loud = loud_stretches(samples, rate, config.vad_loud_db, config.silence_db) if config.vad_loud_db > 0 else []
        near_loud = speech_mask(loud, len(log_probs), frame_seconds, config.vad_pad_seconds)
        letters = (log_probs.argmax(-1) != recognizer.vocabulary.blank_id) & ~silent
        if speech is None and loud and not (letters & ~near_loud).any():
            # Frames near loud sound are kept whatever Silero says, and blanking the others changes
            # no greedy word: Silero (about half of a transcription's time) has nothing to decide.
            # The padded loud stretches stand in for its speech at word edges.
            pad = config.vad_pad_seconds
            speech, kept = [(max(0.0, start - pad), end + pad) for start, end in loud], near_loud
        else:
            heard = speech_stretches(samples, rate, config.vad_threshold) if speech is None else speech
            speech = sorted(heard + loud)
            kept = speech_mask(speech, len(log_probs), frame_seconds, config.vad_pad_seconds)
        silent |= ~kept
    elif config.vad != "off":
        raise ValueError(f"decoding.vad must be one of {', '.join(VAD_METHODS)}, not {config.vad!r}")
    else:
        speech = None
    log_probs[silent] = -np.inf
    log_probs[silent, recognizer.vocabulary.blank_id] = 0.0
    return torch.from_numpy(log_probs), speech


def transcribe_log_probs(
    recognizer: Recognizer,
    source: str,
    samples: np.ndarray,
    log_probs: np.ndarray,
    config: DecodingConfig,
    speech: list[tuple[float, float]] | None = None,
) -> Transcription:
    """The result for ``samples`` whose model outputs are ``log_probs`` (frames, vocab; changed in
    place): non-speech frames blanked (:func:`speech_log_probs`), then the words are decoded,
    timed, their edges refined, and grouped into segments."""
    frames, speech = speech_log_probs(recognizer, samples, log_probs, config, speech)
    words = recognizer.decoder(config).words(frames[None], torch.tensor([len(frames)]), recognizer.frame_seconds)[0]
    aligned = align_segments(words, frames, recognizer.vocabulary, recognizer.frame_seconds, config)
    aligned = refine_word_edges(aligned, samples, recognizer.sample_rate, speech=speech)
    return words_to_transcription(source, aligned, len(samples) / recognizer.sample_rate, config)


def align(recognizer: Recognizer, audio: AudioInput, text: str, sample_rate: int | None = None) -> list[Word]:
    """When each word of a known transcript ``text`` was said in ``audio`` (a path, array or tensor):
    CTC forced alignment of the whole recording at once (fine for a few minutes; the trellis is
    frames x characters), then each word's edges moved to where its sound starts and stops.
    Characters the model's vocabulary lacks are dropped (and words made only of them). Returns []
    when the audio is too short to spell the text."""
    _, samples = _read_input(recognizer, 0, audio, sample_rate, recognizer.config.decoding)
    words = normalize_text(text).split()
    log_probs, _ = recognizer.log_probs(torch.from_numpy(samples)[None], torch.tensor([len(samples)]))
    words = ["".join(c for c in w if c in recognizer.vocabulary.characters) for w in words]
    aligned = align_words(log_probs[0].cpu(), [w for w in words if w], recognizer.vocabulary, recognizer.frame_seconds)
    return refine_word_edges(aligned, samples, recognizer.sample_rate)


def transcribe(
    recognizer: Recognizer,
    audio: AudioInput | Iterable[AudioInput],
    batch_size: int = 16,
    sample_rate: int | None = None,
    errors: str = "raise",
    progress: bool = False,
    **decoding: object,
) -> Transcription | list[Transcription]:
    """Transcribe a path, a numpy array or a torch tensor (one result), or a list of them (a list of
    results in input order). Arrays are (samples,), or 2-D with the shorter axis as channels
    ((channels, samples) or soundfile's (samples, channels)), float or integer (scaled by the
    type's range), at ``sample_rate`` (the model's rate when None). ``errors="raise"`` raises
    :class:`AudioError` for an input that cannot be read; ``errors="report"`` returns a result with
    ``error`` set and goes on.
    Keyword arguments override the model's decoding config (e.g. ``chunk_seconds=20``)."""
    if errors not in ("raise", "report"):
        raise ValueError(f"errors must be 'raise' or 'report', not {errors!r}")
    single = isinstance(audio, (str, Path, np.ndarray, torch.Tensor))
    inputs = [audio] if single else list(audio)
    config = dataclasses.replace(recognizer.config.decoding, **decoding)
    results = []
    for result in transcribe_stream(recognizer, inputs, batch_size, sample_rate, config, progress):
        if result.error and errors == "raise":
            raise AudioError(result.error)
        results.append(result)
    return results[0] if single else results
