"""Output writers for transcriptions: plain text, JSON, SRT and WebVTT subtitles, TSV."""

from __future__ import annotations

import json
from typing import Callable

from .transcribe import Transcription


def format_timestamp(seconds: float, decimal_marker: str = ".") -> str:
    """``HH:MM:SS.mmm`` (SRT uses a comma as the decimal marker)."""
    milliseconds = round(seconds * 1000)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    seconds, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal_marker}{milliseconds:03d}"


def to_txt(result: Transcription) -> str:
    """The transcript on one line."""
    return result.text + "\n"


def to_json(result: Transcription) -> str:
    """One JSON object: source, text, duration, segments with their words and times."""
    return json.dumps(result.to_dict(), ensure_ascii=False) + "\n"


def to_srt(result: Transcription) -> str:
    """SubRip subtitles, one cue per segment."""
    cues = [
        f"{number}\n{format_timestamp(s.start, ',')} --> {format_timestamp(s.end, ',')}\n{s.text}\n"
        for number, s in enumerate(result.segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(result: Transcription) -> str:
    """WebVTT subtitles, one cue per segment."""
    cues = [f"{format_timestamp(s.start)} --> {format_timestamp(s.end)}\n{s.text}\n" for s in result.segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_tsv(result: Transcription) -> str:
    """Tab-separated start and end (integer milliseconds) and text, one row per segment, with a header."""
    rows = ["start\tend\ttext"] + [f"{round(1000 * s.start)}\t{round(1000 * s.end)}\t{s.text}" for s in result.segments]
    return "\n".join(rows) + "\n"


WRITERS: dict[str, Callable[[Transcription], str]] = {"txt": to_txt, "json": to_json, "srt": to_srt, "vtt": to_vtt, "tsv": to_tsv}
