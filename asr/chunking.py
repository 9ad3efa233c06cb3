"""Long audio in chunks: where to cut, what context each chunk sees, and stitching the outputs.

Audio longer than ``decoding.chunk_seconds`` is cut into regions at pauses: in the middle of the
widest stretch the voice-activity detector calls non-speech, else at the quietest point; each region is
decoded with ``chunk_context_seconds`` of audio on either side, and only the output frames inside
the region are kept. The kept frames of all regions form one (frames, vocab) matrix for the whole
file, decoded as if the file had been decoded in one piece, so no word is doubled or lost at a cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from .config import Config, DecodingConfig
from .decoding import Decoder
from .text import Vocabulary
from .vad import speech_stretches


class Recognizer(Protocol):
    """What transcription needs of a loaded model; :class:`asr.recognizer.Recognizer` is one. (An
    interface, so that transcription does not import the facade that imports it.)"""

    config: Config
    vocabulary: Vocabulary

    @property
    def sample_rate(self) -> int: ...

    @property
    def frame_samples(self) -> int: ...

    @property
    def frame_seconds(self) -> float: ...

    def output_frames(self, num_samples: int) -> int: ...

    def log_probs(self, waveforms: torch.Tensor, sample_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decoder(self, config: DecodingConfig | None = None) -> Decoder: ...


@dataclass
class Item:
    """One loaded input waiting for its chunks' outputs."""

    index: int
    source: str
    samples: np.ndarray
    log_probs: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 0), np.float32)
    )  # (frames, vocab), filled chunk by chunk
    speech: list[tuple[float, float]] | None = None  # voice activity (seconds), when it was needed to cut


@dataclass
class Chunk:
    """Samples [start, end) of one item, whose output frames [keep_from, keep_to) are kept."""

    item: Item
    start: int  # samples
    end: int
    keep_from: int  # output frames of the whole file
    keep_to: int


def plan_regions(
    samples: np.ndarray,
    sample_rate: int,
    frame_samples: int,
    config: DecodingConfig,
    speech: list[tuple[float, float]] | None = None,
) -> list[tuple[int, int]]:
    """Cut ``samples`` into regions (start, end) that, with context on both sides, fit in a chunk.

    Cuts fall on multiples of ``frame_samples`` (one output frame) within ``cut_search_seconds``
    before the longest allowed region end: in the middle of the widest pause between the ``speech``
    stretches (seconds, from voice activity) there, or, with none, at the quietest 100 ms.
    """
    total = len(samples)
    chunk = int(config.chunk_seconds * sample_rate)
    if total <= chunk:
        return [(0, total)]
    context = _frames(config.chunk_context_seconds * sample_rate, frame_samples) * frame_samples
    longest = _frames(chunk - 2 * context, frame_samples) * frame_samples
    search = min(_frames(config.cut_search_seconds * sample_rate, frame_samples) * frame_samples, longest // 2)
    if longest <= 0:
        raise ValueError("decoding.chunk_seconds must exceed twice decoding.chunk_context_seconds")
    regions = []
    start = 0
    while total - start + context > chunk:
        low, high = start + longest - search, start + longest
        pause = _widest_pause(speech, low, high, sample_rate) if speech is not None else None
        cut = pause if pause is not None else low + _quietest(samples[low:high], sample_rate)
        cut = max(start + frame_samples, cut // frame_samples * frame_samples)
        regions.append((start, cut))
        start = cut
    regions.append((start, total))
    return regions


def _frames(samples: float, frame_samples: int) -> int:
    return int(samples // frame_samples)


def _widest_pause(speech: list[tuple[float, float]], low: int, high: int, sample_rate: int) -> int | None:
    """The middle (in samples) of the widest stretch of [low, high) outside every ``speech``
    stretch, or None when speech fills it."""
    gaps = []
    position = low
    for start, end in sorted(speech):
        start, end = round(start * sample_rate), round(end * sample_rate)
        if start > position:
            gaps.append((position, min(start, high)))
        position = max(position, end)
        if position >= high:
            break
    if position < high:
        gaps.append((position, high))
    gaps = [(a, b) for a, b in gaps if b > a]
    if not gaps:
        return None
    start, end = max(gaps, key=lambda gap: gap[1] - gap[0])
    return (start + end) // 2


def _quietest(samples: np.ndarray, sample_rate: int) -> int:
    """Offset of the centre of the quietest 100 ms (10 ms steps) in ``samples``."""
    hop = sample_rate // 100
    frames = len(samples) // hop
    energy = np.square(samples[: frames * hop].reshape(frames, hop)).mean(axis=1)
    width = min(10, frames)
    smoothed = np.convolve(energy, np.ones(width) / width, mode="valid")  # "valid": no zero padding at the ends
    return (int(np.argmin(smoothed)) + width // 2) * hop


def plan_chunks(recognizer: Recognizer, item: Item, config: DecodingConfig) -> list[Chunk]:
    """The chunks that fill ``item.log_probs`` (allocated here): one per region of ``plan_regions``,
    widened by the context on either side."""
    samples, frame_samples = item.samples, recognizer.frame_samples
    total_frames = int(recognizer.output_frames(len(samples)))
    item.log_probs = np.zeros((total_frames, len(recognizer.vocabulary)), np.float32)
    context = round(config.chunk_context_seconds * recognizer.sample_rate / frame_samples) * frame_samples
    if len(samples) > config.chunk_seconds * recognizer.sample_rate and config.vad == "silero" and item.speech is None:
        item.speech = speech_stretches(samples, recognizer.sample_rate, config.vad_threshold)
    regions = plan_regions(samples, recognizer.sample_rate, frame_samples, config, item.speech)
    chunks = []
    for number, (start, end) in enumerate(regions):
        last = number == len(regions) - 1
        chunks.append(
            Chunk(
                item,
                start=0 if len(regions) == 1 else max(0, start - context),
                end=len(samples) if last else min(len(samples), end + context),
                keep_from=start // frame_samples,
                keep_to=total_frames if last else end // frame_samples,
            )
        )
    return chunks


def stitched_log_probs(
    recognizer: Recognizer, samples: np.ndarray, config: DecodingConfig | None = None, batch_size: int = 16
) -> np.ndarray:
    """(frames, vocab) log-probabilities of ``samples`` (float32 at the model's rate) as transcription
    computes them: chunk by chunk with context, the kept frames stitched into one matrix."""
    item = Item(0, "", samples)
    decode_chunks(recognizer, plan_chunks(recognizer, item, config or recognizer.config.decoding), batch_size)
    return item.log_probs


def decode_chunks(recognizer: Recognizer, chunks: list[Chunk], batch_size: int) -> None:
    """Run the model on ``chunks`` (longest first, ``batch_size`` at a time); store the kept frames."""
    chunks = sorted(chunks, key=lambda c: c.end - c.start, reverse=True)
    for first in range(0, len(chunks), batch_size):
        batch = chunks[first : first + batch_size]
        longest = batch[0].end - batch[0].start
        waveforms = torch.zeros(len(batch), longest)
        for row, chunk in enumerate(batch):
            waveforms[row, : chunk.end - chunk.start] = torch.from_numpy(chunk.item.samples[chunk.start : chunk.end])
        counts = torch.tensor([c.end - c.start for c in batch])
        log_probs, _ = recognizer.log_probs(waveforms, counts)
        log_probs = log_probs.cpu().numpy()
        for row, chunk in enumerate(batch):
            offset = chunk.start // recognizer.frame_samples  # chunks start on output-frame boundaries
            chunk.item.log_probs[chunk.keep_from : chunk.keep_to] = log_probs[
                row, chunk.keep_from - offset : chunk.keep_to - offset
            ]
