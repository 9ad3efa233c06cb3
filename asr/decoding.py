"""Turning CTC outputs into text."""

from __future__ import annotations

import torch

from .text import Vocabulary


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
