"""Streaming transcription: audio fed in pieces of any size, partial text as it grows, final segments
with word times as pauses close them.

A bidirectional model needs audio after a frame to judge it, so the stream is decoded in chunks
(``chunk_seconds``), each computed with ``context_seconds`` of audio before it and
``lookahead_seconds`` after it; only the chunk's own output frames are kept, stitched into one
matrix as the long-audio path does (``chunking.py``). The frames of the look-ahead give the
partial text a tentative tail. When the kept frames hold a pause (blank for
``decoding.segment_pause_seconds``), everything before its middle is decoded as offline
transcription decodes a file (energy gate, voice activity, word times, segments) and becomes final.

A model trained with ``features.utterance_mean_norm`` subtracts the mean of whatever audio it is
given, and offline that is the whole file: early in a stream the audio heard so far is too little
for the same mean, so no final is made until its decoding would see ``settle_seconds`` of audio
(the partial text still shows every word as it comes).
"""

from __future__ import annotations

import queue
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .audio import load_audio
from .chunking import Recognizer
from .config import DecodingConfig
from .decoding import greedy_decode
from .results import Segment
from .transcribe import silent_frames, transcribe_log_probs

SETTLE_SECONDS = 15.0  # with utterance mean norm: stream vs offline WER 3.00% -> 1.78% (benchmarks/RESULTS.md)


@dataclass
class StreamUpdate:
    """What one piece of audio changed: the text not yet final (``partial``, replacing the last
    one) and the segments that became final with it (times from the stream's start)."""

    partial: str = ""
    final: list[Segment] = field(default_factory=list)


class Stream:
    """Feed audio (float32 at the model's rate) with :meth:`feed`; call :meth:`finish` at the end."""

    def __init__(
        self,
        recognizer: Recognizer,
        chunk_seconds: float = 1.0,
        lookahead_seconds: float = 0.5,
        context_seconds: float = 2.0,
        config: DecodingConfig | None = None,
        final_context_seconds: float | None = None,
        settle_seconds: float | None = None,
    ):
        if chunk_seconds <= 0 or lookahead_seconds < 0 or context_seconds < 0 or (final_context_seconds or 0) < 0:
            raise ValueError("chunk_seconds must be positive, the look-ahead and contexts not negative")
        if settle_seconds is None:
            settle_seconds = SETTLE_SECONDS if recognizer.config.features.utterance_mean_norm else 0.0
        if not 0 <= settle_seconds < float("inf"):
            raise ValueError(f"settle_seconds must be a finite number, 0 or more, not {settle_seconds}")
        self.recognizer = recognizer
        self.config = config or recognizer.config.decoding
        frame, rate = recognizer.frame_samples, recognizer.sample_rate
        self.chunk = max(1, round(chunk_seconds * rate / frame)) * frame  # whole output frames
        self.lookahead = round(lookahead_seconds * rate / frame) * frame
        self.context = round(context_seconds * rate / frame) * frame
        # Finals are decoded again with as much audio before them as offline transcription gives a
        # chunk (decoding.chunk_seconds): a bidirectional model's words near a pause depend on it.
        if final_context_seconds is None:
            final_context_seconds = self.config.chunk_seconds
        self.final_context = max(self.context, round(final_context_seconds * rate / frame) * frame)
        self.settle = round(settle_seconds * rate)  # samples a final's decoding must see
        self.audio = np.zeros(0, np.float32)  # the stream's samples from sample ``audio_start`` on
        self.audio_start = 0
        self.stable = np.zeros((0, len(recognizer.vocabulary)), np.float32)  # kept frames from ``committed``
        self.committed = 0  # output frames already final
        self.tentative = np.zeros((0, len(recognizer.vocabulary)), np.float32)  # the last look-ahead's frames
        self.segments: list[Segment] = []
        self.finished = False

    @property
    def samples_fed(self) -> int:
        return self.audio_start + len(self.audio)

    @property
    def text(self) -> str:
        """The final text so far."""
        return " ".join(segment.text for segment in self.segments if segment.text)

    def feed(self, samples: np.ndarray) -> StreamUpdate:
        """Add ``samples`` (1-D, at the model's rate); decode every chunk whose look-ahead is now there."""
        if self.finished:
            raise ValueError("this stream is finished: start a new one")
        self.audio = np.concatenate([self.audio, np.asarray(samples, np.float32).reshape(-1)])
        while self.samples_fed >= self._stable_samples() + self.chunk + self.lookahead:
            self._decode_next(self._stable_samples() + self.chunk)
        return StreamUpdate(self.partial(), self._finalize_at_pauses())

    def finish(self) -> StreamUpdate:
        """Decode what is left (no look-ahead needed at the end) and make it all final."""
        if not self.finished:
            if self.samples_fed > self._stable_samples():
                self._decode_next(self.samples_fed)
            self.finished = True
        final = self._finalize_at_pauses()
        if len(self.stable):
            final += self._finalize(len(self.stable))
        return StreamUpdate("", final)

    def partial(self) -> str:
        """The text of the frames not yet final, the look-ahead's tentative frames included (greedy)."""
        frames = np.concatenate([self.stable, self.tentative]) if len(self.tentative) else self.stable
        if not len(frames):
            return ""
        text = greedy_decode(torch.from_numpy(frames)[None], torch.tensor([len(frames)]), self.recognizer.vocabulary)[0]
        return " ".join(text.split())

    def _stable_samples(self) -> int:
        """Stream samples whose output frames are kept (the end of the last decoded chunk)."""
        return (self.committed + len(self.stable)) * self.recognizer.frame_samples

    def _decode_next(self, end: int) -> None:
        """Run the model over [start - context, end + look-ahead) and keep the frames of [start, end),
        where start is the end of the kept frames (``end``: the stream's end, all frames kept)."""
        frame = self.recognizer.frame_samples
        start = self._stable_samples()
        at_end = end >= self.samples_fed
        log_probs, first = self._model_frames(start, self.samples_fed if at_end else end + self.lookahead)
        last = len(log_probs) if at_end else first + (end - start) // frame
        self.stable = np.concatenate([self.stable, log_probs[first:last]])
        self.tentative = log_probs[last:]

    def _model_frames(self, start: int, end: int, context: int | None = None) -> tuple[np.ndarray, int]:
        """Log-probabilities (frames, vocab) of the stream's samples [start - context, end) (the
        chunks' context unless given), and the index of the frame where ``start`` falls (``start``
        is a whole number of frames)."""
        window_start = max(0, start - (self.context if context is None else context))
        window = self.audio[window_start - self.audio_start : end - self.audio_start]
        log_probs, counts = self.recognizer.log_probs(torch.from_numpy(window)[None], torch.tensor([len(window)]))
        return log_probs[0, : int(counts[0])].cpu().numpy(), (start - window_start) // self.recognizer.frame_samples

    def _finalize_at_pauses(self) -> list[Segment]:
        """Make final everything before the middle of the last pause in the kept frames, and, with
        no pause for ``decoding.chunk_seconds``, everything before the middle of the longest gap
        between words. A pause is a run of frames whose most likely symbol is the blank or a space
        (models fill the pauses between words with either, and a cut there splits no word), or
        whose audio is quieter than ``decoding.silence_db`` (where a model may still hear fragments)."""
        if not len(self.stable):
            return []
        frame = self.recognizer.frame_samples
        if not self.finished and self.samples_fed - max(0, self.committed * frame - self.final_context) < self.settle:
            return []
        vocabulary = self.recognizer.vocabulary
        gaps = np.isin(self.stable.argmax(-1), [vocabulary.blank_id, *vocabulary.encode(" ")])
        start = self.committed * frame - self.audio_start
        samples = self.audio[start : start + len(self.stable) * frame]
        gaps |= silent_frames(samples, frame, len(self.stable), self.config.silence_db, margin=1)
        runs = _true_runs(gaps)
        pause = max(1, round(self.config.segment_pause_seconds / self.recognizer.frame_seconds))
        cuts = [start + (end - start) // 2 for start, end in runs if end - start >= pause and start > 0]
        if cuts:
            return self._finalize(cuts[-1])
        if len(self.stable) * self.recognizer.frame_seconds > self.config.chunk_seconds and runs:
            start, end = max(runs, key=lambda run: run[1] - run[0])
            return self._finalize(max(1, start + (end - start) // 2))
        return []

    def _finalize(self, frames: int) -> list[Segment]:
        """Decode the first ``frames`` kept frames' audio as offline transcription would: the model
        run again over it with all the audio heard around it (up to the final context before,
        everything fed after: closer to a whole-file decoding than the chunks'), then the energy gate,
        voice activity, words and segments. Times are shifted to the stream's clock, and audio no
        later step needs is dropped."""
        frame, rate = self.recognizer.frame_samples, self.recognizer.sample_rate
        start = self.committed * frame
        end = min((self.committed + frames) * frame, self.samples_fed)
        log_probs, first = self._model_frames(start, self.samples_fed, self.final_context)
        log_probs = log_probs[first : first + frames].copy()
        samples = self.audio[start - self.audio_start : end - self.audio_start]
        result = transcribe_log_probs(self.recognizer, "<stream>", samples, log_probs, self.config)
        offset = start / rate
        for segment in result.segments:
            segment.start, segment.end = round(segment.start + offset, 3), round(segment.end + offset, 3)
            for word in segment.words:
                word.start, word.end = round(word.start + offset, 3), round(word.end + offset, 3)
        self.committed += frames
        self.stable = self.stable[frames:]
        keep_from = max(0, self.committed * frame - self.final_context)
        self.audio = self.audio[keep_from - self.audio_start :]
        self.audio_start = keep_from
        self.segments += result.segments
        return result.segments


def _true_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in ``flags``."""
    padded = np.concatenate([[False], flags, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def replay_blocks(
    path: str, sample_rate: int, block_seconds: float = 0.1, realtime: bool = True
) -> Iterator[np.ndarray]:
    """The audio file at ``path`` in blocks of ``block_seconds``, each given no sooner than it would
    have been heard (``realtime``): a recording standing in for a microphone."""
    samples = load_audio(path, sample_rate)
    block = max(1, round(block_seconds * sample_rate))
    began = time.monotonic()
    for first in range(0, len(samples), block):
        if realtime:
            time.sleep(max(0.0, began + (first + block) / sample_rate - time.monotonic()))
        yield samples[first : first + block]


def microphone_blocks(sample_rate: int, block_seconds: float = 0.1) -> Iterator[np.ndarray]:
    """Blocks of the default microphone's audio (mono float32 at ``sample_rate``) through
    sounddevice (PortAudio), as they arrive, until the caller stops."""
    try:
        import sounddevice
    except (ImportError, OSError) as error:  # OSError: the package is there, the PortAudio library is not
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"no microphone input: {reason} (pip install sounddevice; on Debian apt-get install libportaudio2)"
        ) from None
    blocks: queue.Queue = queue.Queue()

    def receive(data, frames, timing, status) -> None:  # PortAudio's thread
        if status:
            print(f"asr: microphone: {status}", file=sys.stderr)
        blocks.put(data[:, 0].copy())

    try:
        device = sounddevice.InputStream(
            samplerate=sample_rate,
            channels=1,
            dtype="float32",
            blocksize=round(block_seconds * sample_rate),
            callback=receive,
        )
    except Exception as error:  # noqa: BLE001 - PortAudioError and ValueError for no or unusable devices
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"no microphone input: {reason}") from None
    with device:
        while True:
            yield blocks.get()
