"""N-gram language models: build an ARPA file from text with interpolated modified Kneser-Ney.

No maintained pip package builds ARPA files (KenLM's ``lmplz`` is a C++ binary; NLTK's models do
not write ARPA and are slow), so the estimate is written out here, following Chen & Goodman (1998)
and KenLM's ``lmplz``:

- Highest order: raw counts. Lower orders: continuation counts (how many distinct words precede
  the n-gram), except for n-grams that start with ``<s>``, which nothing can precede (raw counts).
- Three discounts per order from the counts of counts: D_k = k - (k+1) Y t_{k+1} / t_k with
  Y = t_1 / (t_1 + 2 t_2), for k = 1, 2 and 3+.
- p(w | h) = (a(h w) - D(a(h w))) / a(h) + b(h) p(w | h'), where b(h) = sum_k D_k N_k(h .) / a(h)
  is also the back-off weight written to the ARPA file; unigrams interpolate with a uniform
  distribution over the vocabulary and ``<unk>``.

:func:`build_arpa_from_counts` makes a bigram LM from published word and word-pair counts instead
of text (symspellpy's wheel bundles such counts from Google Books): see its docstring.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

from .files import atomic_write, open_text
from .text import normalize_text

log = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
KENLM_MAX_ORDER = 6  # flashlight-text's KenLM build: "compiled to support up to 6"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback's, for orders with too few counts


def read_sentences(path: str | Path) -> list[list[str]]:
    """Normalised sentences of a text file, one per non-empty line, or the ``text`` fields of a
    JSON-lines manifest (a path ending in ``.jsonl``)."""
    with open_text(path) as f:
        lines = list(f)
    if str(path).endswith(".jsonl"):
        texts = []
        for number, line in enumerate(lines, start=1):
            try:
                texts.append(json.loads(line)["text"] if line.strip() else "")
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path}, line {number}: not a manifest line with a text field") from None
        lines = texts
    return [words for words in (normalize_text(line).split() for line in lines) if words]


def discounts(adjusted: Counter) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) from one order's adjusted counts."""
    t = Counter(count for count in adjusted.values() if count <= 4)
    if not all(t[k] for k in (1, 2, 3, 4)):
        log.warning(
            "counts of counts 1-4 are %s: too little text to estimate discounts; using KenLM's fallback %s",
            [t[k] for k in (1, 2, 3, 4)],
            FALLBACK_DISCOUNTS,
        )
        return FALLBACK_DISCOUNTS
    y = t[1] / (t[1] + 2 * t[2])
    return tuple(max(0.0, min(k, k - (k + 1) * y * t[k + 1] / t[k])) for k in (1, 2, 3))


def estimate(sentences: list[list[str]], order: int) -> tuple[list[dict[tuple, float]], list[dict[tuple, float]]]:
    """(log10 probabilities, log10 back-off weights) per order, indexed 0 for unigrams."""
    if order < 1:
        raise ValueError("order must be at least 1")
    raw = [Counter() for _ in range(order)]
    for words in sentences:
        tokens = [BOS] + words + [EOS]
        for n in range(1, order + 1):
            for i in range(len(tokens) - n + 1):
                gram = tuple(tokens[i : i + n])
                if gram != (BOS,):
                    raw[n - 1][gram] += 1
    # Adjusted counts: raw for the highest order and for n-grams starting with <s>, else the
    # number of distinct words seen before the n-gram.
    adjusted = [Counter() for _ in range(order)]
    adjusted[order - 1] = raw[order - 1]
    for n in range(order, 1, -1):
        for gram in raw[n - 1]:
            adjusted[n - 2][gram[1:]] += 1
    for n in range(1, order):
        for gram, count in raw[n - 1].items():
            if gram[0] == BOS:
                adjusted[n - 1][gram] = count
    vocabulary = {gram[0] for gram in adjusted[0]} | {UNK}

    probs: list[dict[tuple, float]] = [{} for _ in range(order)]
    backoffs: list[dict[tuple, float]] = [{} for _ in range(order)]
    interpolated: dict[tuple, float] = {}  # linear probabilities of the order below, for interpolation
    for n in range(1, order + 1):
        d = discounts(adjusted[n - 1])
        context_total: dict[tuple, float] = defaultdict(float)
        context_discount: dict[tuple, float] = defaultdict(float)
        for gram, count in adjusted[n - 1].items():
            context_total[gram[:-1]] += count
            context_discount[gram[:-1]] += d[min(count, 3) - 1]
        gamma = {context: context_discount[context] / total for context, total in context_total.items()}
        current: dict[tuple, float] = {}
        for gram, count in adjusted[n - 1].items():
            context = gram[:-1]
            lower = 1.0 / len(vocabulary) if n == 1 else interpolated[gram[1:]]
            current[gram] = (count - d[min(count, 3) - 1]) / context_total[context] + gamma[context] * lower
        if n == 1:
            current[(UNK,)] = gamma[()] / len(vocabulary)
        for gram, p in current.items():
            probs[n - 1][gram] = math.log10(p)
        if n > 1:
            for context, weight in gamma.items():
                backoffs[n - 2][context] = math.log10(weight) if weight > 0 else -99.0
        interpolated = current  # the next order interpolates with these
    probs[0][(BOS,)] = -99.0  # <s> is never predicted
    if order > 1:
        backoffs[0].setdefault((BOS,), 0.0)
    return probs, backoffs


def write_arpa(probs: list[dict[tuple, float]], backoffs: list[dict[tuple, float]], path: str | Path) -> None:
    """Write an ARPA file."""
    order = len(probs)
    with atomic_write(path, text=True) as out:
        out.write("\n\\data\\\n")
        for n in range(1, order + 1):
            out.write(f"ngram {n}={len(probs[n - 1])}\n")
        for n in range(1, order + 1):
            out.write(f"\n\\{n}-grams:\n")
            for gram in sorted(probs[n - 1]):
                line = f"{probs[n - 1][gram]:.6f}\t{' '.join(gram)}"
                if n < order and gram in backoffs[n - 1]:
                    line += f"\t{backoffs[n - 1][gram]:.6f}"
                out.write(line + "\n")
        out.write("\n\\end\\\n")


def build_arpa(text: str | Path, out: str | Path, order: int = 3, characters: bool = False) -> Path:
    """Estimate an ``order``-gram modified Kneser-Ney LM from ``text`` (one sentence per line,
    normalised like transcripts, or a manifest; see :func:`read_sentences`) and write it to
    ``out`` in ARPA format. With ``characters`` the units are characters, with ``|`` between
    words (for lexicon-free beam search)."""
    if not 2 <= order <= KENLM_MAX_ORDER:
        raise ValueError(
            f"order {order}: the KenLM in flashlight-text loads n-gram models of order 2 to {KENLM_MAX_ORDER} only"
        )
    sentences = read_sentences(text)
    if not sentences:
        raise ValueError(f"{text}: no text to build an LM from")
    if characters:
        sentences = [list("|".join(words)) for words in sentences]
    probs, backoffs = estimate(sentences, order)
    write_arpa(probs, backoffs, out)
    return Path(out)


SYMSPELLPY_COUNTS = ("frequency_dictionary_en_82_765.txt", "frequency_bigramdictionary_en_243_342.txt")


def symspellpy_count_files() -> tuple[Path, Path]:
    """The English word and word-pair count files inside the installed symspellpy wheel (Google Books
    counts, MIT licence): a general word LM that needs no download."""
    try:
        import symspellpy
    except ImportError:
        raise ValueError("--counts symspellpy needs the symspellpy package: pip install symspellpy") from None
    folder = Path(symspellpy.__file__).parent
    return folder / SYMSPELLPY_COUNTS[0], folder / SYMSPELLPY_COUNTS[1]


def read_counts(path: str | Path, words_per_entry: int) -> dict[tuple[str, ...], int]:
    """``words_per_entry`` words then a count per line (``the 23135851162``, ``of the 4116...``),
    words normalised like transcripts; entries that normalise to the same words are added up."""
    counts: Counter = Counter()
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != words_per_entry + 1 or not fields[-1].isdigit():
                raise ValueError(
                    f"{path}, line {number}: expected {words_per_entry} word(s) and a count, got {line.strip()!r}"
                )
            words = tuple(normalize_text(word) for word in fields[:-1])
            if all(word and " " not in word for word in words):
                counts[words] += int(fields[-1])
    return counts


def estimate_from_counts(
    unigrams: dict[str, int], bigrams: dict[tuple[str, str], int], sentence_words: float = 20.0
) -> tuple[list[dict[tuple, float]], list[dict[tuple, float]]]:
    """(log10 probabilities, log10 back-off weights) of an interpolated Kneser-Ney bigram LM
    estimated from word counts and (pruned) word-pair counts, as :func:`estimate` gives them.

    Three levels, each interpolated with the one below so that every context sums to 1:

    - raw: p0(w) = c(w) / C over the words, ``</s>`` (count C / ``sentence_words``: the counts
      have no sentence ends) and ``<unk>`` (the smallest word count);
    - continuation: p1(w) = (N(. w) - D(N(. w))) / N + g1 p0(w), where N(. w) is how many distinct
      words precede w among the bigrams, N their sum, g1 = sum D(N(. w)) / N, and D the modified
      Kneser-Ney discounts of the continuation counts;
    - bigram: p(w | h) = (c(h w) - D(c(h w))) / c(h) + g(h) p1(w) for the listed pairs, where
      g(h) = 1 - sum of the first terms and c(h) = s c(w=h), h's word count on the pairs' scale
      (at least its listed pairs' sum). A published pair list is pruned, so part of c(h) is in
      pairs not listed: g(h) backs off that mass, which a discount estimated from counts of counts
      could not (a pruned list has no counts of 1-4).

    The scale s is there because published pair counts may come from a larger corpus than the word
    counts (symspellpy's: about 60 times). Words nearly always followed by one listed word
    ("devoid of", "tantamount to") show it as their ratio of listed pairs to word count, so s is the
    99.9th percentile of that ratio over the contexts (at least 1: counts of one text give 1).
    """
    unigrams = {word: count for word, count in unigrams.items() if count > 0 and word not in (BOS, EOS, UNK)}
    if not unigrams:
        raise ValueError("no word counts to build an LM from")
    bigrams = {
        pair: count for pair, count in bigrams.items() if count > 0 and pair[0] in unigrams and pair[1] in unigrams
    }
    raw = dict(unigrams)
    total = sum(raw.values())
    raw[EOS] = total / sentence_words
    raw[UNK] = min(unigrams.values())
    raw_total = sum(raw.values())

    continuation = Counter(pair[1] for pair in bigrams)
    continuation_total = sum(continuation.values())
    if continuation_total:
        d = discounts(continuation)
        continuation_discount = {word: d[min(count, 3) - 1] for word, count in continuation.items()}
        backoff_mass = sum(continuation_discount.values()) / continuation_total
    else:
        backoff_mass = 1.0
    unigram_p = {}
    for word, count in raw.items():
        seen = (continuation[word] - continuation_discount[word]) / continuation_total if continuation[word] else 0.0
        unigram_p[word] = seen + backoff_mass * count / raw_total

    bigram_discounts = FALLBACK_DISCOUNTS if not bigrams or min(bigrams.values()) > 4 else discounts(Counter(bigrams))
    by_context: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (first, second), count in bigrams.items():
        by_context[first].append((second, count))
    ratios = sorted(
        sum(count for _, count in followers) / unigrams[context] for context, followers in by_context.items()
    )
    scale = max(1.0, ratios[int(0.999 * (len(ratios) - 1))]) if ratios else 1.0
    log.info(
        "LM from counts: %d words, %d word pairs, pair counts on %.1f times the word counts' scale",
        len(unigrams),
        len(bigrams),
        scale,
    )
    probs: list[dict[tuple, float]] = [{(w,): math.log10(p) for w, p in unigram_p.items()}, {}]
    backoffs: list[dict[tuple, float]] = [{}, {}]
    for context, followers in by_context.items():
        context_count = max(scale * unigrams[context], sum(count for _, count in followers))
        seen = {word: (count - bigram_discounts[min(count, 3) - 1]) / context_count for word, count in followers}
        left = 1.0 - sum(seen.values())
        for word, p in seen.items():
            probs[1][(context, word)] = math.log10(p + left * unigram_p[word])
        backoffs[0][(context,)] = math.log10(left) if left > 0 else -99.0
    probs[0][(BOS,)] = -99.0  # <s> is never predicted; after it, the unigram distribution
    backoffs[0][(BOS,)] = 0.0
    return probs, backoffs


def build_arpa_from_counts(
    unigram_file: str | Path,
    bigram_file: str | Path,
    out: str | Path,
    keep: Callable[[str], bool] | None = None,
    sentence_words: float = 20.0,
) -> tuple[Path, list[str]]:
    """Write the bigram LM :func:`estimate_from_counts` makes of two count files (see
    :func:`read_counts`) to ``out``; ``keep`` filters words (e.g. those a model can spell).
    Returns the path and the LM's words (for a lexicon)."""
    unigrams = {gram[0]: count for gram, count in read_counts(unigram_file, 1).items() if keep is None or keep(gram[0])}
    bigrams = {gram: count for gram, count in read_counts(bigram_file, 2).items()}
    probs, backoffs = estimate_from_counts(unigrams, bigrams, sentence_words)
    write_arpa(probs, backoffs, out)
    return Path(out), sorted(unigrams)
