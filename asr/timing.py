"""Word timing: words force-aligned to the model's outputs, their edges moved to where their sound
starts and stops, and grouped into segments (subtitle lines)."""

from __future__ import annotations

import math

import numpy as np
import torch

from .config import DecodingConfig
from .decoding import align_words
from .results import Segment, Transcription, Word
from .text import Vocabulary


def align_segments(
    words: list[Word], log_probs: torch.Tensor, vocabulary: Vocabulary, frame_seconds: float, config: DecodingConfig
) -> list[Word]:
    """The decoded ``words`` timed by forced alignment to ``log_probs`` (frames, vocab).

    One segment at a time (an hour in one piece would need a trellis of frames x characters), with
    a few frames of margin on either side. Windows never overlap (neighbours split the gap between
    them halfway), so aligned words of adjacent segments cannot overlap either. A segment with too
    many characters for its frames keeps the decoder's times."""
    aligned: list[Word] = []
    margin = 10
    segments = make_segments(words, config)
    bounds = (
        [0] + [round((a.end + b.start) / 2 / frame_seconds) for a, b in zip(segments, segments[1:])] + [len(log_probs)]
    )
    for i, segment in enumerate(segments):
        first = max(bounds[i], int(segment.start / frame_seconds) - margin)
        last = min(bounds[i + 1], math.ceil(segment.end / frame_seconds) + margin)
        timed = align_words(
            log_probs[first:last], [w.word for w in segment.words], vocabulary, frame_seconds, offset=first
        )
        aligned += timed or segment.words  # too many characters for the frames: keep the decoder's times
    return aligned


def _reach(level: np.ndarray, peak: int, stop: int, direction: int, threshold: float, bridge: int) -> int:
    """The last step louder than ``threshold`` from ``peak`` towards ``stop`` (exclusive) before a
    quiet gap of ``bridge`` steps."""
    edge, quiet, step = peak, 0, peak + direction
    while step != stop and quiet < bridge:
        if level[step] > threshold:
            edge, quiet = step, 0
        else:
            quiet += 1
        step += direction
    return edge


def _stretch_steps(stretches: list[tuple[float, float]], steps: int, steps_per_second: float) -> np.ndarray:
    """(steps,) bool: True inside the (start, end) stretches, in seconds."""
    inside = np.zeros(steps, bool)
    for start, end in stretches:
        inside[int(start * steps_per_second) : math.ceil(end * steps_per_second)] = True
    return inside


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """``mask`` widened by ``steps`` on each side of every True run."""
    padded = np.pad(mask, steps)
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * steps + 1).any(axis=1)


def _speech_bounds(near_speech: np.ndarray, first: int, last: int, earliest: int, latest: int) -> tuple[int, int]:
    """``earliest`` and ``latest`` narrowed so that a word aligned to steps [first, last) grows only
    through steps the VAD heard speech in (or near)."""
    while latest > last and not near_speech[last:latest].all():
        latest = last + int(np.argmin(near_speech[last:latest]))
    while earliest < first and not near_speech[earliest:first].all():
        earliest = first - int(np.argmin(near_speech[earliest:first][::-1]))
    return earliest, latest


def _trim_to_speech(near_speech: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """Steps [start, end) without the steps at either edge that lie away from what the VAD heard
    as speech (a word aligned into the noise after a phrase), unless none are near speech."""
    inside = np.flatnonzero(near_speech[start:end])
    return (start + int(inside[0]), start + int(inside[-1]) + 1) if len(inside) else (start, end)


def refine_word_edges(
    words: list[Word],
    samples: np.ndarray,
    sample_rate: int,
    drop_db: float = 40.0,
    max_shift_seconds: float = 0.3,
    hop_seconds: float = 0.01,
    bridge_seconds: float = 0.1,
    silent_db: float = 20.0,
    speech: list[tuple[float, float]] | None = None,
) -> list[Word]:
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
    neighbours instead: with ``speech`` (the voice-activity detector's (start, end) stretches, in
    seconds) only where it heard speech, and a word with no speech between its neighbours is
    dropped, since what the model heard there is noise. With ``speech``, an edge also moves out
    only through audio within ``bridge_seconds`` of what the VAD heard as speech, and is pulled
    back to it when the model aligned it beyond.
    """
    hop = max(1, round(hop_seconds * sample_rate))
    steps = len(samples) // hop
    if steps == 0 or not words:
        return words
    view = samples[: steps * hop].reshape(steps, hop)
    level = 10 * np.log10(np.einsum("ij,ij->i", view, view) / hop + 1e-12)
    floor = float(np.percentile(level, 10))
    max_shift = round(max_shift_seconds * sample_rate / hop)
    speech_steps = None if speech is None else _stretch_steps(speech, steps, sample_rate / hop)
    bridge = max(1, round(bridge_seconds * sample_rate / hop))
    near_speech = None if speech_steps is None else _dilate(speech_steps, bridge)
    refined: list[Word] = []
    for i, word in enumerate(words):
        first, last = (
            int(word.start * sample_rate / hop),
            min(steps, round(word.end * sample_rate / hop)),
        )  # steps [first, last)
        if last <= first:
            refined.append(word)
            continue
        before = round(refined[-1].end * sample_rate / hop) if refined else 0  # the neighbours' edges
        after = int(words[i + 1].start * sample_rate / hop) if i + 1 < len(words) else steps
        earliest, latest = max(before, first - max_shift), min(after, last + max_shift)
        if near_speech is not None:  # noise after a phrase can be as loud as its fading end
            earliest, latest = _speech_bounds(near_speech, first, last, earliest, latest)
        peak = first + int(np.argmax(level[first:last]))
        if level[peak] < floor + silent_db and after > before:
            # aligned to background noise (small models "hear" words there): the word is the sound
            # between its neighbours, where the VAD heard speech
            candidates = (
                np.arange(before, after)
                if speech_steps is None
                else before + np.flatnonzero(speech_steps[before:after])
            )
            if len(candidates) == 0:
                continue
            earliest, latest = before, after
            peak = int(candidates[np.argmax(level[candidates])])
        threshold = max(float(level[peak]) - drop_db, floor + 6.0)
        start = _reach(level, peak, max(earliest, 0) - 1, -1, threshold, bridge)
        end = _reach(level, peak, max(latest, peak + 1), 1, threshold, bridge) + 1
        if near_speech is not None:
            start, end = _trim_to_speech(near_speech, start, end)
        refined.append(
            Word(word.word, round(start * hop / sample_rate, 3), round(end * hop / sample_rate, 3), word.confidence)
        )
    return refined


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


def words_to_transcription(source: str, words: list[Word], duration: float, config: DecodingConfig) -> Transcription:
    """The result for one recording of ``duration`` seconds: its timed words grouped into segments."""
    return Transcription(
        source=source,
        text=" ".join(w.word for w in words),
        duration=round(duration, 4),
        segments=make_segments(words, config),
    )
