import pytest

from asr.text import DEFAULT_CHARACTERS, OutOfVocabularyError, Vocabulary, normalize_text


def test_normalize_text_casefolds_strips_punctuation_keeps_apostrophes():
    assert normalize_text("  Hello,   WORLD! It's  well-known.  ") == "hello world it's well known"
    assert normalize_text("\u201cQuoted\u201d \u2018single\u2019 don\u2019t") == "quoted single don't"
    assert normalize_text("...") == ""


def test_vocabulary_round_trip():
    vocabulary = Vocabulary()
    text = "the quick brown fox's jump"
    ids = vocabulary.encode(text)
    assert all(0 < i < len(vocabulary) for i in ids)
    assert vocabulary.decode(ids) == text
    assert len(vocabulary) == len(DEFAULT_CHARACTERS) + 1
    assert vocabulary.tokens[vocabulary.blank_id] == "<blank>"


def test_out_of_vocabulary_characters_are_counted_not_dropped():
    with pytest.raises(OutOfVocabularyError) as info:
        Vocabulary().encode("route 66 caf\u00e9")
    assert info.value.characters == {"6": 2, "\u00e9": 1}
    assert "'6' x2" in str(info.value)


def test_vocabulary_from_texts_adds_needed_characters():
    vocabulary = Vocabulary.from_texts(["route 66", "caf\u00e9"])
    assert vocabulary.characters[: len(DEFAULT_CHARACTERS)] == DEFAULT_CHARACTERS
    assert set(vocabulary.characters[len(DEFAULT_CHARACTERS) :]) == {"6", "\u00e9"}
    assert vocabulary.decode(vocabulary.encode("caf\u00e9 66")) == "caf\u00e9 66"
