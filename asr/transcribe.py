"""Transcribing audio of any length: files or arrays in, text with timed segments out, in input order.

Audio longer than ``decoding.chunk_seconds`` is cut at quiet points into regions; each region is
decoded with ``chunk_context_seconds`` of audio on either side, and only the output frames inside
the region are kept. The kept frames of all regions form one (frames, vocab) matrix for the whole
file, decoded as if the file had been decoded in one piece, so no word is doubled or lost at a cut.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
import torch
from tqdm import tqdm

from .audio import AudioError, load_audio, prepare_samples
from .config import DecodingConfig
from .decoding import Word, align_words, greedy_words
from .text import normalize_text
from .vad import VAD_METHODS, speech_frames

if TYPE_CHECKING:
    from .recognizer import Recognizer

AudioInput = Union[str, Path, np.ndarray, torch.Tensor]


@dataclass
class Segment:
    """A stretch of speech between pauses: a subtitle line."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Transcription:
    """The result for one input. ``error`` is set (and ``text`` empty) when the input could not be read."""

    source: str
    text: str = ""
    duration: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        """Plain values (for JSON)."""
        return dataclasses.asdict(self)


@dataclass
class _Item:
    """One loaded input waiting for its chunks' outputs."""

    index: int
    source: str
    samples: np.ndarray
    log_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (frames, vocab), filled chunk by chunk


@dataclass
class _Chunk:
    item: _Item
    start: int  # samples
    end: int
    keep_from: int  # output frames of the whole file
    keep_to: int


def plan_regions(samples: np.ndarray, sample_rate: int, frame_samples: int, config: DecodingConfig) -> list[tuple[int, int]]:
    """Cut ``samples`` into regions (start, end) that, with context on both sides, fit in a chunk.

    Cuts fall on multiples of ``frame_samples`` (one output frame) at the quietest 100 ms within
    ``cut_search_seconds`` before the longest allowed region end.
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
        cut = low + _quietest(samples[low:high], sample_rate)
        cut = max(start + frame_samples, cut // frame_samples * frame_samples)
        regions.append((start, cut))
        start = cut
    regions.append((start, total))
    return regions


def _frames(samples: float, frame_samples: int) -> int:
    return int(samples // frame_samples)


def _quietest(samples: np.ndarray, sample_rate: int) -> int:
    """Offset of the centre of the quietest 100 ms (10 ms steps) in ``samples``."""
    hop = sample_rate // 100
    frames = len(samples) // hop
    energy = np.square(samples[: frames * hop].reshape(frames, hop)).mean(axis=1)
    width = min(10, frames)
    smoothed = np.convolve(energy, np.ones(width) / width, mode="valid")  # "valid": no zero padding at the ends
    return (int(np.argmin(smoothed)) + width // 2) * hop


def make_segments(words: list[Word], config: DecodingConfig) -> list[Segment]:
    """Group words into segments at pauses of ``segment_pause_seconds`` or when one grows past
    ``max_segment_seconds``."""
    segments: list[Segment] = []
    for word in words:
        if (
            segments
            and word.start - segments[-1].end < config.segment_pause_seconds
            and word.end - segments[-1].start <= config.max_segment_seconds
        ):
            segment = segments[-1]
            segment.words.append(word)
            segment.end = word.end
            segment.text += " " + word.word
        else:
            segments.append(Segment(word.start, word.end, word.word, [word]))
    return segments


def _read_input(recognizer: Recognizer, index: int, item: AudioInput, sample_rate: int | None, config: DecodingConfig) -> tuple[str, np.ndarray]:
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


def _loaded(recognizer: Recognizer, inputs: list[AudioInput], sample_rate: int | None, config: DecodingConfig, lookahead: int = 4) -> Iterator[tuple[int, str, np.ndarray | AudioError]]:
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
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
    config = config or recognizer.config.decoding
    group: list[_Item | Transcription] = []
    chunks: list[_Chunk] = []
    bar = tqdm(total=len(inputs), desc="transcribe", unit="file", disable=not progress)

    def flush() -> Iterator[Transcription]:
        _decode_chunks(recognizer, chunks, batch_size)
        for entry in group:
            yield entry if isinstance(entry, Transcription) else _finish(recognizer, entry, config)
            bar.update(1)
        group.clear()
        chunks.clear()

    for index, source, samples in _loaded(recognizer, inputs, sample_rate, config):
        if isinstance(samples, AudioError):
            group.append(Transcription(source=source, error=str(samples)))
        else:
            item = _Item(index, source, samples)
            chunks += _plan_chunks(recognizer, item, config)
            group.append(item)
        if len(chunks) >= 4 * batch_size:  # enough to sort into batches of similar length
            yield from flush()
    yield from flush()
    bar.close()


def _plan_chunks(recognizer: Recognizer, item: _Item, config: DecodingConfig) -> list[_Chunk]:
    """The chunks that fill ``item.log_probs`` (allocated here): one per region of ``plan_regions``,
    widened by the context on either side."""
    samples, frame_samples = item.samples, recognizer.frame_samples
    total_frames = int(recognizer.output_frames(len(samples)))
    item.log_probs = np.zeros((total_frames, len(recognizer.vocabulary)), np.float32)
    context = round(config.chunk_context_seconds * recognizer.sample_rate / frame_samples) * frame_samples
    regions = plan_regions(samples, recognizer.sample_rate, frame_samples, config)
    chunks = []
    for number, (start, end) in enumerate(regions):
        last = number == len(regions) - 1
        chunks.append(
            _Chunk(
                item,
                start=0 if len(regions) == 1 else max(0, start - context),
                end=len(samples) if last else min(len(samples), end + context),
                keep_from=start // frame_samples,
                keep_to=total_frames if last else end // frame_samples,
            )
        )
    return chunks


def stitched_log_probs(recognizer: Recognizer, samples: np.ndarray, config: DecodingConfig | None = None, batch_size: int = 16) -> np.ndarray:
    """(frames, vocab) log-probabilities of ``samples`` (float32 at the model's rate) as transcription
    computes them: chunk by chunk with context, the kept frames stitched into one matrix."""
    item = _Item(0, "", samples)
    _decode_chunks(recognizer, _plan_chunks(recognizer, item, config or recognizer.config.decoding), batch_size)
    return item.log_probs


def _decode_chunks(recognizer: Recognizer, chunks: list[_Chunk], batch_size: int) -> None:
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
            chunk.item.log_probs[chunk.keep_from : chunk.keep_to] = log_probs[row, chunk.keep_from - offset : chunk.keep_to - offset]


def silent_frames(samples: np.ndarray, frame_samples: int, frames: int, silence_db: float, margin: int = 5) -> np.ndarray:
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


def refine_word_edges(words: list[Word], samples: np.ndarray, sample_rate: int, drop_db: float = 40.0, max_shift_seconds: float = 0.3, hop_seconds: float = 0.01, bridge_seconds: float = 0.1, silent_db: float = 20.0) -> list[Word]:
    """Move each word's start and end to where its sound starts and stops.

    CTC output frames are 40 ms long and a model emits a word's last letter before the sound ends
    (measured: ends 40-190 ms early), or now and then in the next word's onset, across a pause.
    So each word's edges are found again from its loudest step (10 ms steps): its sound is the run
    of steps louder than that step less ``drop_db`` (and at least 6 dB over the recording's noise
    floor, its 10th percentile step) reached from there across quiet gaps shorter than
    ``bridge_seconds`` (a stop consonant's closure). The run may reach at most ``max_shift_seconds``
    beyond the aligned edges and never into a neighbouring word; in speech without pauses the edges
    stay where the alignment put them, or move out to the neighbours' edges. A word aligned where
    nothing is louder than the noise floor plus ``silent_db`` is looked for anywhere between its
    neighbours instead.
    """
    hop = max(1, round(hop_seconds * sample_rate))
    steps = len(samples) // hop
    if steps == 0 or not words:
        return words
    view = samples[: steps * hop].reshape(steps, hop)
    level = 10 * np.log10(np.einsum("ij,ij->i", view, view) / hop + 1e-12)
    floor = float(np.percentile(level, 10))
    max_shift = round(max_shift_seconds * sample_rate / hop)
    bridge = max(1, round(bridge_seconds * sample_rate / hop))

    def reach(peak: int, stop: int, direction: int, threshold: float) -> int:
        """The last loud step from ``peak`` towards ``stop`` (exclusive) before a quiet gap of ``bridge`` steps."""
        edge, quiet, step = peak, 0, peak + direction
        while step != stop and quiet < bridge:
            if level[step] > threshold:
                edge, quiet = step, 0
            else:
                quiet += 1
            step += direction
        return edge

    refined: list[Word] = []
    for i, word in enumerate(words):
        first, last = int(word.start * sample_rate / hop), min(steps, round(word.end * sample_rate / hop))  # steps [first, last)
        if last <= first:
            refined.append(word)
            continue
        before = round(refined[-1].end * sample_rate / hop) if refined else 0  # the neighbours' edges
        after = int(words[i + 1].start * sample_rate / hop) if i + 1 < len(words) else steps
        earliest, latest = max(before, first - max_shift), min(after, last + max_shift)
        peak = first + int(np.argmax(level[first:last]))
        if level[peak] < floor + silent_db and after > before:
            # aligned to background noise (small models "hear" words there): the word is the sound
            # between its neighbours
            earliest, latest = before, after
            peak = before + int(np.argmax(level[before:after]))
        threshold = max(float(level[peak]) - drop_db, floor + 6.0)
        start = reach(peak, max(earliest, 0) - 1, -1, threshold)
        end = reach(peak, max(latest, peak + 1), 1, threshold) + 1
        refined.append(Word(word.word, round(start * hop / sample_rate, 3), round(end * hop / sample_rate, 3), word.confidence))
    return refined


def _finish(recognizer: Recognizer, item: _Item, config: DecodingConfig) -> Transcription:
    silent = silent_frames(item.samples, recognizer.frame_samples, len(item.log_probs), config.silence_db)
    if config.vad == "silero":
        silent |= ~speech_frames(item.samples, recognizer.sample_rate, recognizer.frame_samples, len(item.log_probs), config.vad_threshold, config.vad_pad_seconds)
    elif config.vad != "off":
        raise ValueError(f"decoding.vad must be one of {', '.join(VAD_METHODS)}, not {config.vad!r}")
    item.log_probs[silent] = -np.inf
    item.log_probs[silent, recognizer.vocabulary.blank_id] = 0.0
    log_probs = torch.from_numpy(item.log_probs)
    beam = recognizer.beam_decoder(config)
    if beam is not None:
        words = beam.words(log_probs[None], torch.tensor([len(log_probs)]), recognizer.frame_seconds)[0]
    else:
        words = greedy_words(log_probs, recognizer.vocabulary, recognizer.frame_seconds, config.word_break_seconds)
    # Time the words by forced alignment, one segment at a time (an hour in one piece would need
    # a trellis of frames x characters), with a few frames of margin on either side.
    # Windows never overlap (neighbours split the gap between them halfway), so aligned words of
    # adjacent segments cannot overlap either.
    aligned: list[Word] = []
    margin = 10
    segments = make_segments(words, config)
    bounds = [0] + [round((a.end + b.start) / 2 / recognizer.frame_seconds) for a, b in zip(segments, segments[1:])] + [len(log_probs)]
    for i, segment in enumerate(segments):
        first = max(bounds[i], int(segment.start / recognizer.frame_seconds) - margin)
        last = min(bounds[i + 1], math.ceil(segment.end / recognizer.frame_seconds) + margin)
        timed = align_words(log_probs[first:last], [w.word for w in segment.words], recognizer.vocabulary, recognizer.frame_seconds, offset=first)
        aligned += timed or segment.words  # too many characters for the frames: keep the decoder's times
    aligned = refine_word_edges(aligned, item.samples, recognizer.sample_rate)
    return words_to_transcription(item.source, aligned, len(item.samples) / recognizer.sample_rate, config)


def words_to_transcription(source: str, words: list[Word], duration: float, config: DecodingConfig) -> Transcription:
    """The result for one recording of ``duration`` seconds: its timed words grouped into segments."""
    return Transcription(source=source, text=" ".join(w.word for w in words), duration=round(duration, 4), segments=make_segments(words, config))


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
    type's range), at ``sample_rate`` (the model's rate when None). ``errors="raise"`` raises :class:`AudioError` for an input that
    cannot be read; ``errors="report"`` returns a result with ``error`` set and goes on.
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
