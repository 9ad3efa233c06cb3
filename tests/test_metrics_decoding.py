import dataclasses

import pytest
import torch

from asr.config import DecodingConfig
from asr.decoding import BeamSearchDecoder, GreedyDecoder, build_decoder, character_runs, greedy_decode, path_to_words
from asr.metrics import error_rates
from asr.text import Vocabulary


def test_error_rates_of_known_strings():
    rates = error_rates(["the cat sat on the mat", "hello world"], ["the cat sit on mat", "hello world again"])
    # sat->sit (S), "the" dropped (D), "again" added (I) over 8 reference words
    assert (rates.substitutions, rates.deletions, rates.insertions) == (1, 1, 1)
    assert rates.reference_words == 8
    assert rates.wer == pytest.approx(3 / 8)
    # characters: "sat"->"sit" 1 sub, "the " deleted 4, " again" inserted 6, over 22 + 11 reference characters
    assert rates.cer == pytest.approx(11 / 33)
    assert rates.utterances == 2
    assert str(rates) == "WER 37.50% CER 33.33% (2 utterances)"


def test_error_rates_reject_mismatched_lists():
    with pytest.raises(ValueError):
        error_rates(["a"], ["a", "b"])


def _posteriors(frames: list[str], vocabulary: Vocabulary) -> torch.Tensor:
    """One-hot-ish log-probabilities: each frame names its most likely token ("_" is blank)."""
    ids = [0 if f == "_" else vocabulary.tokens.index(f) for f in frames]
    logits = torch.full((len(ids), len(vocabulary)), -5.0)
    logits[torch.arange(len(ids)), torch.tensor(ids)] = 5.0
    return logits.log_softmax(-1)


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    vocabulary = Vocabulary()
    # "h h e _ l l _ l o" -> "hello": the blank between the l's keeps the double l
    first = _posteriors(list("hhe_ll_lo") + [" ", " ", "_"] + list("ww_o"), vocabulary)
    second = _posteriors(list("__hi__"), vocabulary)
    batch = torch.nn.utils.rnn.pad_sequence([first, second], batch_first=True)
    lengths = torch.tensor([len(first), len(second)])
    assert greedy_decode(batch, lengths, vocabulary) == ["hello wo", "hi"]


def test_greedy_decoding_ignores_frames_past_the_length():
    vocabulary = Vocabulary()
    posteriors = _posteriors(list("ab_c"), vocabulary)[None]
    assert greedy_decode(posteriors, torch.tensor([2]), vocabulary) == ["ab"]


def test_greedy_words_are_timed_from_first_to_last_frame_and_broken_at_spaces_and_long_blanks():
    vocabulary = Vocabulary()
    # frames 0-1 "hi", a space, "yo" at 4-6, then 8 blanks (0.32 s at 40 ms: past the 0.3 s break), "ok" at 15-16
    frames = list("hi") + [" ", "_"] + list("yyo") + ["_"] * 8 + list("ok") + ["_"]
    posteriors = _posteriors(frames, vocabulary)
    words = GreedyDecoder(vocabulary, word_break_seconds=0.3).words(posteriors[None], torch.tensor([len(frames)]), 0.04)
    assert [(w.word, w.start, w.end) for w in words[0]] == [("hi", 0.0, 0.08), ("yo", 0.16, 0.28), ("ok", 0.6, 0.68)]
    # a shorter blank run joins: without the break rule the last two are one word
    assert [w.word for w in path_to_words(posteriors.argmax(-1).tolist(), vocabulary, 0.04)] == ["hi", "yook"]


def test_character_runs_merge_a_held_token_and_split_repeats_at_blanks():
    vocabulary = Vocabulary()
    a, b = vocabulary.tokens.index("a"), vocabulary.tokens.index("b")
    path = [0, a, a, 0, a, b, b, 0]
    assert character_runs(path, vocabulary.blank_id) == [(a, 1, 2), (a, 4, 4), (b, 5, 6)]


def test_build_decoder_gives_beam_search_for_an_lm_a_lexicon_or_method_beam_only():
    vocabulary = Vocabulary()
    assert isinstance(build_decoder(vocabulary, DecodingConfig()), GreedyDecoder)
    assert isinstance(build_decoder(vocabulary, DecodingConfig(method="beam")), BeamSearchDecoder)
    with pytest.raises(ValueError, match="decoding.method"):
        build_decoder(vocabulary, DecodingConfig(method="viterbi"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        DecodingConfig().lm_weight = 3.0  # changed with dataclasses.replace, never in place
