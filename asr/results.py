"""What transcription returns: words with times, segments (subtitle lines), one result per input."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class Word:
    """A decoded word and when it was said, in seconds from the start of the audio."""

    word: str
    start: float
    end: float
    confidence: float | None = None  # mean posterior of the word's characters where they were aligned


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
