"""The output formats, on results made by hand: every field, no words, past an hour, a word without
a confidence."""

import json

from asr.results import Segment, Transcription, Word
from asr.writers import WRITERS, format_timestamp


def _result() -> Transcription:
    words = [Word("hello", 0.0, 0.42, 0.9512), Word("world", 0.5, 0.9, None)]
    late = [Word("again", 3725.25, 3726.0, 0.5)]  # 1 h 2 min 5.25 s
    segments = [Segment(0.0, 0.9, "hello world", words), Segment(3725.25, 3726.0, "again", late)]
    return Transcription("a.wav", "hello world again", 3726.5, segments)


def test_srt_vtt_and_tsv_write_one_cue_per_segment_or_word_with_hours():
    result = _result()
    assert WRITERS["srt"](result) == (
        "1\n00:00:00,000 --> 00:00:00,900\nhello world\n\n2\n01:02:05,250 --> 01:02:06,000\nagain\n"
    )
    assert WRITERS["vtt"](result, word_level=True).startswith(
        "WEBVTT\n\n00:00:00.000 --> 00:00:00.420\nhello\n\n00:00:00.500 --> 00:00:00.900\nworld\n"
    )
    assert WRITERS["tsv"](result) == "start\tend\ttext\n0\t900\thello world\n3725250\t3726000\tagain\n"
    rows = WRITERS["tsv"](result, word_level=True).splitlines()
    assert rows == [
        "start\tend\ttext\tconfidence",
        "0\t420\thello\t0.9512",
        "500\t900\tworld\t",
        "3725250\t3726000\tagain\t0.5000",
    ]
    assert WRITERS["txt"](result) == "hello world again\n"
    assert json.loads(WRITERS["json"](result))["segments"][0]["words"][1] == {
        "word": "world",
        "start": 0.5,
        "end": 0.9,
        "confidence": None,
    }


def test_a_result_without_words_gives_empty_but_valid_outputs():
    empty = Transcription("silence.wav", "", 30.0, [])
    assert WRITERS["srt"](empty) == ""
    assert WRITERS["vtt"](empty) == "WEBVTT\n\n"
    assert WRITERS["tsv"](empty, word_level=True) == "start\tend\ttext\tconfidence\n"
    assert WRITERS["txt"](empty) == "\n"
    assert json.loads(WRITERS["json"](empty)) == {
        "source": "silence.wav",
        "text": "",
        "duration": 30.0,
        "segments": [],
        "error": None,
    }


def test_timestamps_round_to_the_millisecond_across_carries():
    assert format_timestamp(59.9996) == "00:01:00.000"
    assert format_timestamp(3599.9999, ",") == "01:00:00,000"
