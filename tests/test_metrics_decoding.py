import pytest
import torch

from asr.decoding import greedy_decode
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
