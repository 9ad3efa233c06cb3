"""Hot words: a listed word the lexicon lacks can be written; bad lists get a one-line error."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from asr.decoding import BeamSearchDecoder, read_hotwords, write_lexicon
from asr.recognizer import load_model
from asr.text import Vocabulary

from .conftest import run_cli, speech, write_wav

DIGITS = ["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture
def spoken_digits(tmp_path):
    """A recording of "seven three nine two" and a lexicon of every digit word but "nine"."""
    audio = write_wav(tmp_path / "digits.wav", speech("seven three nine two", "en-US", rate=140))
    lexicon = write_lexicon([w for w in DIGITS if w != "nine"], tmp_path / "no_nine.txt")
    return audio, lexicon


def test_a_hot_word_the_lexicon_lacks_is_written_when_listed_and_not_otherwise(
    trained_digits_model, spoken_digits, tmp_path
):
    audio, lexicon = spoken_digits
    recognizer = load_model(trained_digits_model, device="cpu")
    assert recognizer.transcribe(audio, method="greedy").text == "seven three nine two"
    without = recognizer.transcribe(audio, lexicon=str(lexicon)).text
    assert "nine" not in without.split() and without.split()[:2] == ["seven", "three"]

    hotwords = tmp_path / "hot.txt"
    hotwords.write_text("# words of my domain\nnine\n")
    listed = recognizer.transcribe(audio, lexicon=str(lexicon), hotwords=str(hotwords)).text
    assert listed == "seven three nine two"

    # the CLI, and a model file that carries the list once the original is gone
    result = run_cli("transcribe", trained_digits_model, audio, "--lexicon", lexicon, "--hotwords", hotwords)
    assert result.returncode == 0, result.stderr
    assert "seven three nine two" in result.stdout
    recognizer.config = dataclasses.replace(
        recognizer.config,
        decoding=dataclasses.replace(recognizer.config.decoding, lexicon=str(lexicon), hotwords=str(hotwords)),
    )
    recognizer.save(tmp_path / "with_hotwords.pt")
    hotwords.unlink()
    carried = load_model(tmp_path / "with_hotwords.pt", device="cpu")
    assert carried.transcribe(audio).text == "seven three nine two"


def test_a_boost_favours_a_listed_word_over_the_one_heard(trained_digits_model, spoken_digits, tmp_path):
    """A negative boost is a penalty: "three" listed with -10 gives way to a word the audio fits less."""
    audio, _ = spoken_digits
    lexicon = write_lexicon(DIGITS, tmp_path / "digits.txt")
    hotwords = tmp_path / "hot.txt"
    hotwords.write_text("three -10\n")
    recognizer = load_model(trained_digits_model, device="cpu")
    assert recognizer.transcribe(audio, lexicon=str(lexicon)).text == "seven three nine two"
    penalised = recognizer.transcribe(audio, lexicon=str(lexicon), hotwords=str(hotwords)).text
    assert "three" not in penalised.split()


def test_read_hotwords_takes_phrases_and_boosts(tmp_path):
    path = tmp_path / "hot.txt"
    path.write_text("Cosette 4\n\n# names\njean valjean 2.5\nmorrel\n")
    assert read_hotwords(path, Vocabulary()) == {"cosette": 4.0, "jean": 2.5, "valjean": 2.5, "morrel": 6.0}


@pytest.mark.parametrize(
    "content, problem",
    [
        ("caf\u00e9 2\n", "line 1: 'caf\u00e9' has characters the model cannot write"),
        ("hello\nR2D2\n", "line 2: 'r2d2' has characters the model cannot write"),
        ("word inf\n", "line 1: the boost must be a finite number"),
        ("\n# nothing\n", "no hot words in it"),
        (b"\xff\xfe\x00", "not a hot-word file (not UTF-8 text)"),
    ],
)
def test_a_bad_hot_word_file_gets_a_one_line_error_naming_it(
    trained_digits_model, spoken_digits, tmp_path, content, problem
):
    audio, lexicon = spoken_digits
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = run_cli("transcribe", trained_digits_model, audio, "--lexicon", lexicon, "--hotwords", bad)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"asr: error: {bad}: {problem}"), lines


def test_hot_words_need_a_lexicon_and_an_existing_file(trained_digits_model, spoken_digits, tmp_path):
    audio, _ = spoken_digits
    hotwords = tmp_path / "hot.txt"
    hotwords.write_text("nine\n")
    result = run_cli("transcribe", trained_digits_model, audio, "--hotwords", hotwords)
    assert result.returncode == 2 and "hot words need a beam search with a lexicon" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = run_cli("transcribe", trained_digits_model, audio, "--hotwords", tmp_path / "none.txt")
    assert missing.returncode == 2 and "none.txt: no such hot-word file" in missing.stderr


def test_a_beam_search_with_hot_words_and_a_kenlm_word_lm(tmp_path):
    """Hot words on top of a KenLM word LM: the LM's own words keep their scores, the hot word is added."""
    from .test_lm import cat_and_dog_lm

    lm, lexicon = cat_and_dog_lm(tmp_path)
    vocabulary = Vocabulary()
    hotwords = tmp_path / "hot.txt"
    hotwords.write_text("cab 5\n")
    plain = BeamSearchDecoder(vocabulary, lm=lm, lexicon=lexicon, beam_size=20, lm_weight=0.5)
    boosted = BeamSearchDecoder(vocabulary, lm=lm, lexicon=lexicon, beam_size=20, lm_weight=0.5, hotwords=str(hotwords))
    # frames that spell "the ca?", the last letter t a little likelier than b
    log_probs = _spelling_frames(vocabulary, ["t", "h", "e", " ", "c", "a", ("t", "b")])
    lengths = torch.tensor([log_probs.shape[1]])
    assert plain(log_probs, lengths) == ["the cat"]
    assert boosted(log_probs, lengths) == ["the cab"]


def _spelling_frames(vocabulary: Vocabulary, letters):
    """(1, frames, vocab) log-probabilities that spell ``letters`` one frame each with a blank
    between; a (likelier, other) pair is a frame where both are about equally likely."""
    rows = []
    for letter in letters:
        row = torch.full((len(vocabulary.tokens),), -12.0)
        if isinstance(letter, tuple):
            row[vocabulary.tokens.index(letter[0])] = -0.69
            row[vocabulary.tokens.index(letter[1])] = -0.71
        else:
            row[vocabulary.tokens.index(letter)] = 0.0
        rows.append(row)
        blank = torch.full((len(vocabulary.tokens),), -12.0)
        blank[vocabulary.blank_id] = 0.0
        rows.append(blank)
    return torch.stack(rows)[None].log_softmax(-1)
