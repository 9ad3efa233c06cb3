"""Turning CTC outputs into text (and words with times)."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import IO

import numpy as np
import torch

from .config import DecodingConfig
from .files import atomic_write, held_back_stderr
from .results import Word
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


def character_runs(path: Sequence[int], blank: int) -> list[tuple[int, int, int]]:
    """(token, first frame, last frame) of each character in a CTC frame path (one token per
    frame): a run of one non-blank token is one character, and blanks separate repeats. The one
    walk over a path that greedy decoding, beam search and forced alignment share."""
    runs: list[tuple[int, int, int]] = []
    previous = blank
    for frame, token in enumerate(path):
        if token == previous and token != blank:
            runs[-1] = (token, runs[-1][1], frame)
        elif token != blank:
            runs.append((token, frame, frame))
        previous = token
    return runs


def path_to_words(
    path: Sequence[int], vocabulary: Vocabulary, frame_seconds: float, break_frames: int = 0
) -> list[Word]:
    """The words a CTC frame path spells, each timed from its first character's first frame to its
    last character's last frame. Spaces end words; with ``break_frames``, so does a run of at least
    that many blank frames between two characters."""
    space = vocabulary.tokens.index(" ") if " " in vocabulary.tokens else -1
    words: list[Word] = []
    chars: list[str] = []
    start = end = 0
    for token, first, last in character_runs(path, vocabulary.blank_id):
        if chars and (token == space or (break_frames and first - end >= break_frames)):
            words.append(Word("".join(chars), round(start * frame_seconds, 3), round(end * frame_seconds, 3)))
            chars = []
        if token == space:
            continue
        if not chars:
            start = first
        chars.append(vocabulary.tokens[token])
        end = last + 1
    if chars:
        words.append(Word("".join(chars), round(start * frame_seconds, 3), round(end * frame_seconds, 3)))
    return words


class GreedyDecoder:
    """Best path decoding (the most likely symbol per frame), with the same methods as
    :class:`BeamSearchDecoder`.

    A run of blanks of at least ``word_break_seconds`` also ends a word: models learn spaces only
    between the words of one utterance, so nothing else separates the last word of a sentence from
    the first word of the next in a long recording."""

    def __init__(self, vocabulary: Vocabulary, word_break_seconds: float = 0.3):
        self.vocabulary = vocabulary
        self.word_break_seconds = word_break_seconds

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Best transcript of each utterance in a (batch, frames, vocab) batch."""
        return greedy_decode(log_probs, lengths, self.vocabulary)

    def words(self, log_probs: torch.Tensor, lengths: torch.Tensor, frame_seconds: float) -> list[list[Word]]:
        """Best words of each utterance in a batch, timed."""
        break_frames = max(1, round(self.word_break_seconds / frame_seconds))
        paths = log_probs.argmax(dim=-1).cpu()
        return [
            path_to_words(path[:length].tolist(), self.vocabulary, frame_seconds, break_frames)
            for path, length in zip(paths, lengths.tolist())
        ]


# flashlight's names for the CTC blank and the word boundary (our space)
_BLANK_TOKEN, _WORD_BOUNDARY = "-", "|"


def write_lexicon(words: list[str], path: str | Path) -> Path:
    """A flashlight lexicon: one word per line, then its characters and the word boundary."""
    with atomic_write(path, text=True) as out:
        for word in sorted(set(words)):
            out.write(f"{word}\t{' '.join(word)} {_WORD_BOUNDARY}\n")
    return Path(path)


# The first bytes of the two LM formats KenLM reads: an ARPA file's header line, and the magic of
# its binary format (lm/binary_format.cc).
_ARPA_HEADER = b"\\data\\"
_KENLM_BINARY_MAGIC = b"mmap lm http://kheafield.com/code"


def _regular_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such {what} file")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file, so not a {what} file")
    return path


def check_lm_file(path: str | Path) -> None:
    """Refuse ``path`` unless it is a regular file that starts as an ARPA or KenLM binary LM does.

    Model files name their LM, so a crafted one could name any file; KenLM's own parse errors quote
    the offending line, so the check comes first and its message never shows the file's contents."""
    path = _regular_file(path, "LM")
    with open(path, "rb") as file:
        head = file.read(4096)
    if not (head.lstrip().startswith(_ARPA_HEADER) or head.startswith(_KENLM_BINARY_MAGIC)):
        raise ValueError(f"{path}: not an n-gram LM (neither ARPA, which starts with \\data\\, nor KenLM binary)")


def check_lexicon_file(path: str | Path, vocabulary: Vocabulary) -> None:
    """Refuse ``path`` unless every line is a word followed by its spelling in ``vocabulary``'s
    characters and the word boundary (:func:`write_lexicon`'s format); the message names the line
    number, never its text."""
    path = _regular_file(path, "lexicon")
    spelling_tokens = {_WORD_BOUNDARY} | {t for t in vocabulary.tokens if t != " "}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a lexicon (not UTF-8 text)") from None
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if line.strip() and (len(fields) < 2 or not set(fields[1:]) <= spelling_tokens):
            raise ValueError(
                f"{path}: line {number} is not a lexicon entry (a word, then its spelling in the model's characters)"
            )


# A listed hot word without a boost of its own: its LM log10-probability raised by this much (tuned
# on the LibriSpeech dev speakers: recipes/librispeech/RESULTS.md)
DEFAULT_HOTWORD_BOOST = 6.0


def read_hotwords(path: str | Path, vocabulary: Vocabulary) -> dict[str, float]:
    """A hot-word file's words and their boosts: one word or phrase a line, optionally followed by
    its boost (a number; default :data:`DEFAULT_HOTWORD_BOOST`); blank lines and lines starting
    with ``#`` are skipped. Each word of a phrase gets the phrase's boost; words are lower-cased.
    A line the model cannot spell, or a bad boost, raises ValueError naming the file and line."""
    path = _regular_file(path, "hot-word")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a hot-word file (not UTF-8 text)") from None
    letters = {t for t in vocabulary.tokens if t != " "} - {vocabulary.tokens[vocabulary.blank_id]}
    boosts: dict[str, float] = {}
    for number, line in enumerate(lines, 1):
        fields = line.lower().split()
        if not fields or fields[0].startswith("#"):
            continue
        boost = DEFAULT_HOTWORD_BOOST
        if len(fields) > 1 and _is_number(fields[-1]):
            boost = float(fields.pop())
            if not math.isfinite(boost):
                raise ValueError(f"{path}: line {number}: the boost must be a finite number, not {boost}")
        for word in fields:
            unknown = sorted(set(word) - letters)
            if unknown:
                raise ValueError(
                    f"{path}: line {number}: {word!r} has characters the model cannot write ({''.join(unknown)!r})"
                )
            boosts[word] = boost
    if not boosts:
        raise ValueError(f"{path}: no hot words in it (one word or phrase a line, optionally then a boost)")
    return boosts


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _lines_file(lines: list[str]) -> IO[str]:
    """A temporary text file holding ``lines`` (for flashlight, which reads paths), removed when closed
    or collected: the decoder keeps it as long as it searches."""
    handle = tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8")
    handle.write("\n".join(lines) + "\n")
    handle.flush()
    return handle


def _boosted_lm(base, boosts: dict[int, float]):
    """A word LM (KenLM, or flashlight's zero LM) whose words ``boosts`` names score their boost
    more (in the LM's log10 units), as a torchaudio custom LM."""
    from torchaudio.models.decoder import CTCDecoderLM

    class BoostedLM(CTCDecoderLM):
        def start(self, start_with_nothing: bool):
            return base.start(start_with_nothing)

        def score(self, state, usr_token_idx: int):
            next_state, score = base.score(state, usr_token_idx)
            return next_state, score + boosts.get(usr_token_idx, 0.0)

        def finish(self, state):
            return base.finish(state)

    return BoostedLM()


class BeamSearchDecoder:
    """CTC beam search: torchaudio's ``ctc_decoder`` (flashlight-text, with KenLM built in).

    With a lexicon, words come only from it and ``lm`` is a word n-gram LM (ARPA or KenLM binary);
    without one the search is lexicon-free and ``lm``, if any, scores characters (an LM built with
    ``asr lm build --characters``). ``word_score`` is added per word in both: lexicon-free, on each
    word boundary. ``hotwords`` (a file :func:`read_hotwords` reads; lexicon search only) adds the
    listed words the lexicon lacks and raises each listed word's LM log10 probability by its boost.
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        lm: str = "",
        lexicon: str = "",
        beam_size: int = 50,
        beam_threshold: float = 10.0,
        lm_weight: float = 2.0,
        word_score: float = 0.0,
        beam_size_token: int = 0,
        hotwords: str = "",
    ):
        from torchaudio.models.decoder import ctc_decoder

        if lm:
            check_lm_file(lm)
        if lexicon:
            check_lexicon_file(lexicon, vocabulary)
        boosts = read_hotwords(hotwords, vocabulary) if hotwords else {}
        if hotwords and not lexicon:
            raise ValueError(
                f"{hotwords}: hot words need a beam search with a lexicon (--lexicon, or a model tuned with a word LM)"
            )
        tokens = [
            _BLANK_TOKEN if t == vocabulary.tokens[vocabulary.blank_id] else _WORD_BOUNDARY if t == " " else t
            for t in vocabulary.tokens
        ]
        if _WORD_BOUNDARY not in tokens:
            raise ValueError("beam search needs a vocabulary with a space")
        self.vocabulary = vocabulary
        self.lexicon = lexicon
        self._space_id = vocabulary.tokens.index(" ")
        # Lexicon search appends this frame, surely the word boundary, to each utterance: flashlight
        # completes a word (and LM-scores it) only at the boundary that ends its spelling, and our
        # models emit no space after the last word; without it the search would end inside that
        # word and return its partial spelling, unscored.
        self._boundary_frame = np.full(
            (1, len(vocabulary.tokens)), -1e4, dtype=np.float32
        )  # log(0), finite for flashlight
        self._boundary_frame[0, self._space_id] = 0.0
        lm_dict = None
        if lm and not lexicon:  # lexicon-free: the LM's words are the tokens, in token order
            self._lm_dict = _lines_file(tokens)
            lm_dict = self._lm_dict.name
        search_lm = lm or None
        if boosts:
            lexicon, lm_dict, search_lm = self._hotword_search(vocabulary, lm, lexicon, boosts)
        with held_back_stderr() as banner:  # KenLM's "Loading the LM will be faster ..." and its bar
            try:
                self.decoder = ctc_decoder(
                    lexicon=lexicon or None,
                    tokens=tokens,
                    lm=search_lm,
                    lm_dict=lm_dict,
                    beam_size=beam_size,
                    beam_size_token=beam_size_token or None,  # None: every token
                    beam_threshold=beam_threshold,
                    lm_weight=lm_weight,
                    word_score=word_score,
                    # lexicon-free search has no word score: score each boundary
                    sil_score=0.0 if lexicon else word_score,
                    blank_token=_BLANK_TOKEN,
                    sil_token=_WORD_BOUNDARY,
                    unk_word="<unk>",
                    log_add=True,  # paths to the same words add up (a CTC prefix's probability), not max: lower WER
                )
            except Exception as error:  # noqa: BLE001 - flashlight and KenLM raise their own kinds
                banner.seek(0)
                said = [line for line in banner.read().decode(errors="replace").splitlines() if line.strip()]
                reason = said[-1] if said else str(error).splitlines()[0] if str(error) else type(error).__name__
                raise ValueError(f"{lm or lexicon}: the beam search could not load it ({reason})") from None

    def _hotword_search(self, vocabulary: Vocabulary, lm: str, lexicon: str, boosts: dict[str, float]):
        """The lexicon with the hot words it lacks spelt out, the word list that numbers its words,
        and the LM with the hot words boosted: the arguments of ``ctc_decoder`` for a hot-word search."""
        from flashlight.lib.text.decoder import ZeroLM
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary

        lines = Path(lexicon).read_text(encoding="utf-8").splitlines()
        known = {line.split()[0] for line in lines if line.strip()}
        lines += [f"{word}\t{' '.join(word)} {_WORD_BOUNDARY}" for word in boosts if word not in known]
        self._lexicon_file = _lines_file(lines)
        self._words_file = _lines_file(["<unk>"] + sorted(known | set(boosts)))
        word_dict = Dictionary(self._words_file.name)
        with held_back_stderr():
            base = KenLM(lm, word_dict) if lm else ZeroLM()
        self._lm = _boosted_lm(base, {word_dict.get_index(w): boost for w, boost in boosts.items()})
        return self._lexicon_file.name, self._words_file.name, self._lm

    def words(self, log_probs: torch.Tensor, lengths: torch.Tensor, frame_seconds: float) -> list[list[Word]]:
        """Best words of each utterance in a (batch, frames, vocab) batch, each timed from its first
        character's first frame to its last character's last frame."""
        # numpy, not torch, per utterance: a search of a few dozen frames takes microseconds, about
        # what each small torch call costs
        batch = log_probs.detach().float().cpu().numpy()
        return [
            self._utterance_words(batch[row, :length], frame_seconds) for row, length in enumerate(lengths.tolist())
        ]

    def _best_path(self, log_probs: np.ndarray) -> list[int]:
        """The best hypothesis's token on each frame of one utterance's (frames, vocab) outputs."""
        if self.lexicon:
            log_probs = np.concatenate((log_probs, self._boundary_frame))
        log_probs = np.ascontiguousarray(log_probs)
        frames = log_probs.shape[0]
        # flashlight's own search, as torchaudio's CTCDecoder.__call__ runs it, but without turning
        # every final hypothesis into tensors: with the numpy above, the digits test set decodes in
        # 28 ms instead of 52 (same transcripts)
        results = self.decoder.decoder.decode(log_probs.ctypes.data, frames, log_probs.shape[1])
        return results[0].tokens[1 : frames + 1] if results else []  # between the start and end steps

    def _utterance_words(self, log_probs: np.ndarray, frame_seconds: float) -> list[Word]:
        return path_to_words(self._best_path(log_probs), self.vocabulary, frame_seconds)

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Best transcript of each utterance in a batch."""
        batch = log_probs.detach().float().cpu().numpy()
        # words() without times or Word objects: 7% less time on the digits test set
        return [
            self.vocabulary.decode(token for token, _ in groupby(self._best_path(batch[row, :length])))
            for row, length in enumerate(lengths.tolist())
        ]


def align_words(
    log_probs: torch.Tensor, words: list[str], vocabulary: Vocabulary, frame_seconds: float, offset: int = 0
) -> list[Word]:
    """Time ``words`` (a decoded transcript) by CTC forced alignment on (frames, vocab) outputs.

    torchaudio's ``forced_align`` gives the best frame path that spells the words; a word spans
    from the first frame of its first character to the last frame of its last, and its confidence
    is the mean posterior of its characters on their frames. ``offset`` (frames) is added to times.
    CTC fires a character on one or two frames, often before its sound ends: ``transcribe`` and
    ``align`` move these edges to the sound afterwards (``refine_word_edges``).
    """
    import torchaudio.functional as F

    words = [w for w in words if w]
    if not words:
        return []
    targets = vocabulary.encode(" ".join(words))
    repeats = sum(a == b for a, b in zip(targets, targets[1:]))
    if len(targets) + repeats > len(log_probs):  # too many characters for the frames: no alignment
        return []
    path, scores = F.forced_align(
        log_probs[None].float().cpu(), torch.tensor([targets], dtype=torch.int32), blank=vocabulary.blank_id
    )
    path, probs = path[0].tolist(), scores[0].exp().tolist()
    spans = [  # (first frame, last frame, mean posterior) per character, spaces included
        (first, last, sum(probs[first : last + 1]) / (last - first + 1))
        for _, first, last in character_runs(path, vocabulary.blank_id)
    ]
    timed, index = [], 0
    for word in words:
        first, last = index, index + len(word) - 1
        chars = spans[first : last + 1]
        timed.append(
            Word(
                word,
                round((offset + chars[0][0]) * frame_seconds, 3),
                round((offset + chars[-1][1] + 1) * frame_seconds, 3),
                round(sum(c[2] for c in chars) / len(chars), 4),
            )
        )
        index = last + 2  # skip the space
    return timed


# The decoding settings that shape a beam search: each names a keyword of BeamSearchDecoder.
BEAM_FIELDS = (
    "lm",
    "lexicon",
    "beam_size",
    "beam_threshold",
    "lm_weight",
    "word_score",
    "beam_size_token",
    "hotwords",
)

Decoder = GreedyDecoder | BeamSearchDecoder


def uses_beam_search(config: DecodingConfig) -> bool:
    """Whether ``config`` asks for beam search: ``method: beam``, or an LM, a lexicon or hot words given."""
    if config.method not in ("greedy", "beam"):
        raise ValueError(f"decoding.method must be greedy or beam, not {config.method!r}")
    return config.method == "beam" or bool(config.lm or config.lexicon or config.hotwords)


def build_decoder(vocabulary: Vocabulary, config: DecodingConfig) -> Decoder:
    """The decoder ``config`` asks for (building a beam search loads its LM and lexicon)."""
    if not uses_beam_search(config):
        return GreedyDecoder(vocabulary, config.word_break_seconds)
    return BeamSearchDecoder(vocabulary, **{name: getattr(config, name) for name in BEAM_FIELDS})
