"""Output writers for transcriptions: plain text, JSON, SRT and WebVTT subtitles, TSV."""

from __future__ import annotations

import json
from typing import Callable

from .results import Transcription, Word


def format_timestamp(seconds: float, decimal_marker: str = ".") -> str:
    """``HH:MM:SS.mmm`` (SRT uses a comma as the decimal marker)."""
    milliseconds = round(seconds * 1000)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    seconds, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal_marker}{milliseconds:03d}"


def _cues(result: Transcription, word_level: bool) -> list[tuple[float, float, str]]:
    """(start, end, text) per segment, or per word with ``word_level``."""
    if word_level:
        return [(w.start, w.end, w.word) for s in result.segments for w in s.words]
    return [(s.start, s.end, s.text) for s in result.segments]


def to_txt(result: Transcription, word_level: bool = False) -> str:
    """The transcript on one line."""
    return result.text + "\n"


def to_json(result: Transcription, word_level: bool = False) -> str:
    """One JSON object: source, text, duration, segments with their words, times and confidence
    (always word-level)."""
    return json.dumps(result.to_dict(), ensure_ascii=False) + "\n"


def to_srt(result: Transcription, word_level: bool = False) -> str:
    """SubRip subtitles, one cue per segment (or per word)."""
    cues = [
        f"{number}\n{format_timestamp(start, ',')} --> {format_timestamp(end, ',')}\n{text}\n"
        for number, (start, end, text) in enumerate(_cues(result, word_level), start=1)
    ]
    return "\n".join(cues)


def to_vtt(result: Transcription, word_level: bool = False) -> str:
    """WebVTT subtitles, one cue per segment (or per word)."""
    cues = [
        f"{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n"
        for start, end, text in _cues(result, word_level)
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def _confidence(word: Word) -> str:
    return "" if word.confidence is None else f"{word.confidence:.4f}"


def to_tsv(result: Transcription, word_level: bool = False) -> str:
    """Tab-separated start and end (integer milliseconds) and text, one row per segment, with a
    header; with ``word_level`` one row per word and a confidence column (empty for a word the
    decoder timed without one)."""
    if word_level:
        rows = ["start\tend\ttext\tconfidence"] + [
            f"{round(1000 * w.start)}\t{round(1000 * w.end)}\t{w.word}\t{_confidence(w)}"
            for s in result.segments
            for w in s.words
        ]
    else:
        rows = ["start\tend\ttext"] + [
            f"{round(1000 * start)}\t{round(1000 * end)}\t{text}" for start, end, text in _cues(result, False)
        ]
    return "\n".join(rows) + "\n"


WRITERS: dict[str, Callable[..., str]] = {"txt": to_txt, "json": to_json, "srt": to_srt, "vtt": to_vtt, "tsv": to_tsv}
