"""Text normalisation and the character vocabulary."""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from typing import Iterable

BLANK = "<blank>"
DEFAULT_CHARACTERS = [" ", "'"] + list(string.ascii_lowercase)

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def normalize_text(text: str) -> str:
    """Case-fold, strip punctuation except apostrophes, collapse whitespace.

    Letters and digits are kept; every other symbol becomes a space so that words joined by
    hyphens or slashes stay separate words.
    """
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).casefold()
    text = "".join(ch if ch.isalnum() or ch == "'" or ch.isspace() else " " for ch in text)
    text = re.sub(r"(?<![\w])'|'(?![\w])", " ", text)  # quote marks, not apostrophes inside words
    return " ".join(text.split())


class OutOfVocabularyError(ValueError):
    """Text holds characters the vocabulary lacks."""

    def __init__(self, characters: Counter):
        self.characters = characters
        listed = ", ".join(f"{ch!r} x{n}" for ch, n in characters.most_common())
        super().__init__(f"characters not in the vocabulary: {listed}")


class Vocabulary:
    """CTC output symbols: index 0 is the blank, then one entry per character."""

    def __init__(self, characters: Iterable[str] = DEFAULT_CHARACTERS):
        self.characters = list(characters)
        if len(set(self.characters)) != len(self.characters) or any(len(c) != 1 for c in self.characters):
            raise ValueError("vocabulary characters must be distinct single characters")
        self.tokens = [BLANK] + self.characters
        self._index = {ch: i + 1 for i, ch in enumerate(self.characters)}

    blank_id = 0

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.characters == self.characters

    def missing(self, text: str) -> Counter:
        """Characters of ``text`` with no entry, with their counts."""
        return Counter(ch for ch in text if ch not in self._index)

    def encode(self, text: str) -> list[int]:
        """Token ids of normalised ``text``; raises :class:`OutOfVocabularyError` rather than dropping characters."""
        missing = self.missing(text)
        if missing:
            raise OutOfVocabularyError(missing)
        return [self._index[ch] for ch in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Characters of ``ids`` (blanks skipped), with whitespace collapsed."""
        return " ".join("".join(self.tokens[i] for i in ids if i != self.blank_id).split())

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "Vocabulary":
        """The default characters plus any others the (normalised) ``texts`` use."""
        seen = set()
        for text in texts:
            seen.update(text)
        extra = sorted(seen - set(DEFAULT_CHARACTERS))
        return cls(DEFAULT_CHARACTERS + extra)
