"""Turning CTC outputs into text (and words with times)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .text import Vocabulary


@dataclass
class Word:
    """A decoded word and when it was said, in seconds from the start of the audio."""

    word: str
    start: float
    end: float


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocabulary: Vocabulary) -> list[str]:
    """Best path decoding: take the most likely symbol per frame, merge repeats, drop blanks.

    ``log_probs`` is (batch, frames, vocab) (logits work too); ``lengths`` the valid frames of each.
    """
    best = log_probs.argmax(dim=-1).cpu()
    texts = []
    for path, length in zip(best, lengths.cpu().tolist()):
        ids = torch.unique_consecutive(path[:length]).tolist()
        texts.append(vocabulary.decode(ids))
    return texts


def greedy_words(log_probs: torch.Tensor, vocabulary: Vocabulary, frame_seconds: float, word_break_seconds: float = 0.3) -> list[Word]:
    """Best path words of one recording's (frames, vocab) outputs, each timed from its first
    character's first frame to its last character's last frame.

    A run of blanks of at least ``word_break_seconds`` also ends a word: models learn spaces only
    between the words of one utterance, so nothing else separates the last word of a sentence from
    the first word of the next in a long recording."""
    break_frames = max(1, round(word_break_seconds / frame_seconds))
    ids, counts = torch.unique_consecutive(log_probs.argmax(dim=-1).cpu(), return_counts=True)
    space = vocabulary.tokens.index(" ") if " " in vocabulary.tokens else -1
    words: list[Word] = []
    chars: list[str] = []
    start = end = 0
    frame = 0
    for token, count in zip(ids.tolist(), counts.tolist()):
        if token == space or token == vocabulary.blank_id:
            if chars and (token == space or count >= break_frames):
                words.append(Word("".join(chars), start * frame_seconds, end * frame_seconds))
                chars = []
        else:
            if not chars:
                start = frame
            chars.append(vocabulary.tokens[token])
            end = frame + count
        frame += count
    if chars:
        words.append(Word("".join(chars), start * frame_seconds, end * frame_seconds))
    return words
