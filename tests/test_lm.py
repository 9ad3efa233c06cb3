"""N-gram LM estimation (checked against counts worked out by hand) and LM beam search."""

import json
import math
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from asr.cli import main
from asr.decoding import BeamSearchDecoder, greedy_decode, write_lexicon
from asr.lm import FALLBACK_DISCOUNTS, build_arpa, build_arpa_from_counts, discounts
from asr.text import Vocabulary


def read_arpa(path) -> dict[tuple, tuple[float, float | None]]:
    entries = {}
    for line in open(path):
        fields = line.rstrip("\n").split("\t")
        if len(fields) >= 2:
            entries[tuple(fields[1].split())] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else None)
    return entries


def test_discounts_follow_the_modified_kneser_ney_formula():
    counts = Counter(
        {f"w{i}": 1 for i in range(10)}
        | {f"x{i}": 2 for i in range(4)}
        | {f"y{i}": 3 for i in range(2)}
        | {"z": 4, "big": 9}
    )
    y = 10 / (10 + 2 * 4)
    assert discounts(counts) == pytest.approx((1 - 2 * y * 4 / 10, 2 - 3 * y * 2 / 4, 3 - 4 * y * 1 / 2))
    assert discounts(Counter({"a": 1, "b": 5})) == FALLBACK_DISCOUNTS  # too few counts: KenLM's fallback


def test_a_bigram_lm_matches_probabilities_worked_out_by_hand(tmp_path):
    # Sentences "a b", "a b", "b". Bigram counts: <s> a 2, a b 2, b </s> 3, <s> b 1.
    # Unigram continuation counts: a 1 (after <s>), b 2 (after a, <s>), </s> 1 (after b); total 4.
    # Discounts fall back to 0.5, 1, 1.5. Unigrams: u(a) = .5/4, u(b) = 1/4, u(</s>) = .5/4,
    # back-off mass (.5 + 1 + .5)/4 = .5 spread over 4 words (a, b, </s>, <unk>): + .125 each.
    text = tmp_path / "text.txt"
    text.write_text("A b.\na B\n\nb\n")
    arpa = read_arpa(build_arpa(text, tmp_path / "lm.arpa", order=2))
    expected = {
        ("a",): (0.25, 0.5),
        ("b",): (0.375, 0.5),
        ("</s>",): (0.25, None),
        ("<unk>",): (0.125, None),
        ("<s>", "a"): ((2 - 1) / 3 + 0.5 * 0.25, None),  # context <s>: a 2, b 1; back-off (1 + .5)/3
        ("<s>", "b"): ((1 - 0.5) / 3 + 0.5 * 0.375, None),
        ("a", "b"): ((2 - 1) / 2 + 0.5 * 0.375, None),  # context a: b 2; back-off 1/2
        ("b", "</s>"): ((3 - 1.5) / 3 + 0.5 * 0.25, None),  # context b: </s> 3; back-off 1.5/3
    }
    for gram, (p, backoff) in expected.items():
        assert arpa[gram][0] == pytest.approx(math.log10(p), abs=1e-5), gram
        if backoff is not None:
            assert arpa[gram][1] == pytest.approx(math.log10(backoff), abs=1e-5), gram
    assert arpa[("<s>",)] == (-99.0, pytest.approx(math.log10(0.5), abs=1e-5))


def emissions(frames: list[dict[str, float]], vocabulary: Vocabulary) -> torch.Tensor:
    """(1, frames, vocab) log-probabilities: each frame's listed characters get their probability,
    the rest share what is left ("-" is the blank)."""
    rows = []
    for frame in frames:
        row = torch.full((len(vocabulary),), (1 - sum(frame.values())) / (len(vocabulary) - len(frame)))
        for char, p in frame.items():
            row[vocabulary.blank_id if char == "-" else vocabulary.tokens.index(char)] = p
        rows.append(row)
    return torch.stack(rows).log()[None]


def spell(text: str, alternatives: dict[int, dict[str, float]] | None = None) -> list[dict[str, float]]:
    frames = [{"-": 0.9}]
    for i, char in enumerate(text):
        frames += [alternatives.get(i, {char: 0.9}) if alternatives else {char: 0.9}, {"-": 0.9}]
    return frames


def cat_and_dog_lm(tmp_path) -> tuple[str, str]:
    """A word bigram LM and the lexicon of its six words ("the cat sat", "the dog sat", "a cat ran")."""
    text = tmp_path / "text.txt"
    text.write_text("the cat sat\nthe dog sat\na cat ran\n" * 3)
    build_arpa(text, tmp_path / "words.arpa", order=2)
    return str(tmp_path / "words.arpa"), str(
        write_lexicon(["the", "cat", "dog", "sat", "a", "ran"], tmp_path / "lexicon.txt")
    )


def test_a_character_lm_makes_beam_search_pick_the_word_it_knows(tmp_path):
    vocabulary = Vocabulary()
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\nthe cat ran\na cat and a hat\nthat cat sat\n" * 3)
    assert main(["lm", "build", str(text), str(tmp_path / "chars.arpa"), "--order", "4", "--characters"]) == 0
    log_probs = emissions(spell("the cat", {5: {"o": 0.5, "a": 0.4}}), vocabulary)
    lengths = torch.tensor([log_probs.shape[1]])
    assert greedy_decode(log_probs, lengths, vocabulary) == ["the cot"]
    plain = BeamSearchDecoder(vocabulary, beam_size=20)
    assert plain(log_probs, lengths) == ["the cot"]  # beam search alone follows the acoustics
    with_lm = BeamSearchDecoder(vocabulary, lm=str(tmp_path / "chars.arpa"), beam_size=20, lm_weight=1.0)
    assert with_lm(log_probs, lengths) == ["the cat"]
    # trying only the most likely token per frame leaves the LM nothing to choose from
    one_token = BeamSearchDecoder(
        vocabulary, lm=str(tmp_path / "chars.arpa"), beam_size=20, lm_weight=1.0, beam_size_token=1
    )
    assert one_token(log_probs, lengths) == ["the cot"]


def test_a_lexicon_restricts_the_output_to_its_words(tmp_path):
    vocabulary = Vocabulary()
    lm, lexicon = cat_and_dog_lm(tmp_path)
    log_probs = emissions(spell("the dug sat", {5: {"u": 0.6, "o": 0.3}}), vocabulary)
    lengths = torch.tensor([log_probs.shape[1]])
    assert greedy_decode(log_probs, lengths, vocabulary) == ["the dug sat"]
    decoder = BeamSearchDecoder(vocabulary, lm=lm, lexicon=lexicon, beam_size=20, lm_weight=0.5)
    words = decoder(log_probs, lengths)[0].split()
    assert words == ["the", "dog", "sat"] and set(words) <= {"the", "cat", "dog", "sat", "a", "ran"}
    with pytest.raises(FileNotFoundError, match="missing.arpa: no such LM file"):
        BeamSearchDecoder(vocabulary, lm=str(tmp_path / "missing.arpa"))


def test_the_word_score_sets_how_readily_a_lexicon_free_search_ends_words():
    vocabulary = Vocabulary()
    log_probs = emissions(spell("the cat", {3: {" ": 0.45, "-": 0.5}}), vocabulary)  # a faint space
    lengths = torch.tensor([log_probs.shape[1]])
    assert greedy_decode(log_probs, lengths, vocabulary) == ["thecat"]
    eager = BeamSearchDecoder(vocabulary, beam_size=20, word_score=3.0)
    reluctant = BeamSearchDecoder(vocabulary, beam_size=20, word_score=-3.0)
    assert eager(log_probs, lengths) == ["the cat"] and reluctant(log_probs, lengths) == ["thecat"]


def test_the_word_lm_also_chooses_an_utterances_last_word(tmp_path):
    # models emit no space after the last word; the LM must still score that word in its context
    vocabulary = Vocabulary()
    text = tmp_path / "text.txt"
    text.write_text("the cat sat\na cab ran\nthe cat\na cab\n" * 3)  # cat and cab equally common
    build_arpa(text, tmp_path / "words.arpa", order=2)
    lexicon = write_lexicon(["the", "cat", "cab", "sat", "a", "ran"], tmp_path / "lexicon.txt")
    frames = spell("the cab", {6: {"b": 0.55, "t": 0.45}})
    frames[-1] = {"-": 1.0}  # as our models do: no space after the last word
    log_probs = emissions(frames, vocabulary)
    lengths = torch.tensor([log_probs.shape[1]])
    assert greedy_decode(log_probs, lengths, vocabulary) == ["the cab"]
    decoder = BeamSearchDecoder(
        vocabulary, lm=str(tmp_path / "words.arpa"), lexicon=str(lexicon), beam_size=20, lm_weight=1.0
    )
    assert decoder(log_probs, lengths) == ["the cat"]
    words = decoder.words(log_probs, lengths, frame_seconds=0.1)[0]
    assert [w.word for w in words] == ["the", "cat"] and words[-1].end <= lengths.item() * 0.1


def test_beam_search_times_each_word_by_its_characters_frames_in_a_padded_batch(tmp_path):
    vocabulary = Vocabulary()
    lm, lexicon = cat_and_dog_lm(tmp_path)
    silence = [{"-": 0.9999}] * 7
    long = silence + spell("the dug", {5: {"u": 0.6, "o": 0.3}}) + silence + spell("sat") + silence
    short = spell("a cat")
    # the short utterance is padded with confident "o"s: words from past its length would show
    log_probs = torch.cat(
        [emissions(long, vocabulary), emissions(short + [{"o": 0.99}] * (len(long) - len(short)), vocabulary)]
    )
    lengths = torch.tensor([len(long), len(short)])
    decoder = BeamSearchDecoder(vocabulary, lm=lm, lexicon=lexicon, beam_size=20, lm_weight=0.5)
    first, second = decoder.words(log_probs, lengths, frame_seconds=0.04)
    assert [w.word for w in first] == ["the", "dog", "sat"] and [w.word for w in second] == ["a", "cat"]
    assert decoder(log_probs, lengths) == ["the dog sat", "a cat"]  # transcripts alone: the same words
    assert first[0].start == pytest.approx(8 * 0.04)  # "t" is frame 8: 7 of silence, then spell's blank
    assert first[0].end == pytest.approx(13 * 0.04)  # "e" is frame 12
    assert first[-1].end == pytest.approx((len(long) - 7 - 1) * 0.04)  # "t" of "sat" ends before its blank
    assert (second[0].start, second[0].end, second[-1].end) == pytest.approx((0.04, 0.08, (len(short) - 1) * 0.04))


def test_tune_lm_stores_the_best_weights_in_the_model_file(tiny_config, digits_corpus, tmp_path, capsys):
    from asr.recognizer import load_model
    from asr.train import train

    model = train(tiny_config)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(line.split('"text": "')[1].split('"')[0] for line in open(digits_corpus["train"])) + "\n")
    assert main(["lm", "build", str(text), str(tmp_path / "chars.arpa"), "--order", "3", "--characters"]) == 0
    out = tmp_path / "tuned.pt"
    args = [
        "tune-lm",
        str(model),
        str(digits_corpus["dev"]),
        "--lm",
        str(tmp_path / "chars.arpa"),
        "--lm-weights",
        "0,0.5,1",
        "--word-scores",
        "0,1",
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()  # KenLM prints its own loading messages too
    table = [line.split("\t") for line in lines[lines.index("lm_weight\tword_score\twer\tcer") + 1 :]]
    assert len(table) == 6
    best_weight, best_score = float(table[0][0]), float(table[0][1])
    assert float(table[0][2]) == min(float(row[2]) for row in table)
    assert len({float(row[2]) for row in table}) > 1  # the pairs differ, so picking the best one means something
    tuned = load_model(out, device="cpu")
    assert (tuned.config.decoding.lm_weight, tuned.config.decoding.word_score) == (best_weight, best_score)
    assert isinstance(tuned.decoder(), BeamSearchDecoder)


def test_a_tuned_model_carries_its_lm_and_lexicon_when_moved_and_the_originals_deleted(
    tiny_config, digits_corpus, tmp_path, capsys, monkeypatch
):
    from asr.recognizer import load_model
    from asr.train import train

    monkeypatch.setenv("ASR_CACHE", str(tmp_path / "cache"))
    model = train(tiny_config)
    built = tmp_path / "built"
    built.mkdir()
    lm, lexicon = built / "words.arpa", built / "lexicon.txt"
    assert main(["lm", "build", str(digits_corpus["train"]), str(lm), "--order", "2", "--lexicon", str(lexicon)]) == 0
    originals = {"lm": lm.read_bytes(), "lexicon": lexicon.read_bytes()}
    tuned = tmp_path / "tuned.pt"
    tune = ["tune-lm", str(model), str(digits_corpus["dev"]), "--lm", str(lm), "--lexicon", str(lexicon)]
    assert main([*tune, "--lm-weights", "0.5", "--word-scores", "1", "--out", str(tuned), "--device", "cpu"]) == 0
    audio = [u["audio_filepath"] for u in map(json.loads, open(digits_corpus["test"]))]
    audio = [str(Path(digits_corpus["test"]).parent / a) for a in audio]
    before = [r.text for r in load_model(tuned, device="cpu").transcribe(audio)]
    moved = tmp_path / "elsewhere" / "model.pt"
    moved.parent.mkdir()
    tuned.rename(moved)
    lm.unlink()
    lexicon.unlink()
    capsys.readouterr()
    again = load_model(moved, device="cpu")
    decoding = again.config.decoding
    assert (
        Path(decoding.lm).read_bytes() == originals["lm"]
        and Path(decoding.lexicon).read_bytes() == originals["lexicon"]
    )
    assert Path(decoding.lm).parent == tmp_path / "cache" and (decoding.lm_weight, decoding.word_score) == (0.5, 1.0)
    assert [r.text for r in again.transcribe(audio)] == before
    Path(decoding.lm).write_text("torn")  # a damaged copy in the cache is written again
    assert Path(load_model(moved, device="cpu").config.decoding.lm).read_bytes() == originals["lm"]
    assert main(["transcribe", str(moved), audio[0], "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == before[0]
    # exported, the LM and lexicon go beside the file, and travel with its folder
    (tmp_path / "export").mkdir()
    exported = again.export(tmp_path / "export" / "model.onnx", "onnx")
    assert sorted(p.name for p in exported.parent.iterdir()) == [
        "model.onnx",
        "model.onnx.lexicon.txt",
        "model.onnx.lm.arpa",
    ]
    onnx_before = [r.text for r in load_model(exported).transcribe(audio)]
    (tmp_path / "export").rename(tmp_path / "shipped")
    shutil.rmtree(tmp_path / "cache")
    shipped = load_model(tmp_path / "shipped" / "model.onnx")
    assert Path(shipped.config.decoding.lm).read_bytes() == originals["lm"]
    assert Path(shipped.config.decoding.lexicon).parent == tmp_path / "shipped"
    assert [r.text for r in shipped.transcribe(audio)] == onnx_before


def test_lm_build_reads_a_manifest_writes_its_lexicon_and_refuses_unigram_models(tmp_path, capsys):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text(
        "".join(
            json.dumps({"audio_filepath": f"{i}.wav", "duration": 1.0, "text": text}) + "\n"
            for i, text in enumerate(["Seven three, oh NINE.", "one two", "nine nine oh"])
        )
    )
    assert (
        main(
            [
                "lm",
                "build",
                str(manifest),
                str(tmp_path / "digits.arpa"),
                "--order",
                "2",
                "--lexicon",
                str(tmp_path / "lexicon.txt"),
            ]
        )
        == 0
    )
    lexicon = dict(line.split("\t") for line in (tmp_path / "lexicon.txt").read_text().splitlines())
    assert lexicon == {
        "nine": "n i n e |",
        "oh": "o h |",
        "one": "o n e |",
        "seven": "s e v e n |",
        "three": "t h r e e |",
        "two": "t w o |",
    }
    unigrams = {gram for gram in read_arpa(tmp_path / "digits.arpa") if len(gram) == 1}
    assert unigrams == {("<s>",), ("</s>",), ("<unk>",)} | {(word,) for word in lexicon}
    assert main(["lm", "build", str(manifest), str(tmp_path / "unigram.arpa"), "--order", "1"]) == 2
    assert "order 1: the KenLM in flashlight-text loads n-gram models of order 2 to 6 only" in capsys.readouterr().err
    assert not (tmp_path / "unigram.arpa").exists()
    assert main(["lm", "build", str(manifest), str(tmp_path / "order7.arpa"), "--order", "7", "--characters"]) == 2
    assert "order 7: the KenLM in flashlight-text loads n-gram models of order 2 to 6 only" in capsys.readouterr().err
    manifest.write_text(manifest.read_text() + "not json\n")
    assert main(["lm", "build", str(manifest), str(tmp_path / "bad.arpa")]) == 2
    assert f"{manifest}, line 4: not a manifest line with a text field" in capsys.readouterr().err


def arpa_probability(arpa: dict, context: str, word: str) -> float:
    """p(word | context) of a bigram ARPA model read by :func:`read_arpa` (back-off rule)."""
    if (context, word) in arpa:
        return 10 ** arpa[(context, word)][0]
    backoff = arpa[(context,)][1] or 0.0
    return 10 ** (backoff + arpa[(word,)][0])


def write_counts(tmp_path, words: dict[str, int], pairs: dict[str, int]) -> str:
    (tmp_path / "words.txt").write_text("".join(f"{w} {c}\n" for w, c in words.items()))
    (tmp_path / "pairs.txt").write_text("".join(f"{p} {c}\n" for p, c in pairs.items()))
    return f"{tmp_path / 'words.txt'},{tmp_path / 'pairs.txt'}"


def test_a_bigram_lm_from_counts_matches_probabilities_worked_out_by_hand(tmp_path, capsys):
    counts = write_counts(tmp_path, {"a": 6, "B": 3, "c": 1}, {"a b": 2, "a c": 1, "b a": 2})
    assert (
        main(["lm", "build", "--counts", counts, str(tmp_path / "lm.arpa"), "--lexicon", str(tmp_path / "lexicon.txt")])
        == 0
    )
    arpa = read_arpa(tmp_path / "lm.arpa")
    # Raw level: a 6, b 3, c 1, </s> 10 / 20 words per sentence = .5, <unk> 1 (the smallest count); 11.5 in all.
    # Continuation counts: a 1 (after b), b 1 (after a), c 1 (after a); total 3; discounts fall back to
    # .5 each, so p1(w) = .5/3 + .5 p0(w) for a, b and c, and .5 p0(w) for </s> and <unk>.
    p1 = {
        "a": 0.5 / 3 + 0.5 * 6 / 11.5,
        "b": 0.5 / 3 + 0.5 * 3 / 11.5,
        "c": 0.5 / 3 + 0.5 / 11.5,
        "</s>": 0.5 * 0.5 / 11.5,
        "<unk>": 0.5 / 11.5,
    }
    for word, p in p1.items():
        assert arpa[(word,)][0] == pytest.approx(math.log10(p), abs=1e-5), word
    # Context a (count 6): b 2 - 1, c 1 - .5; back-off 1 - 1.5/6 = .75. Context b (count 3): a 2 - 1; back-off 2/3.
    assert arpa[("a", "b")][0] == pytest.approx(math.log10(1 / 6 + 0.75 * p1["b"]), abs=1e-5)
    assert arpa[("a", "c")][0] == pytest.approx(math.log10(0.5 / 6 + 0.75 * p1["c"]), abs=1e-5)
    assert arpa[("b", "a")][0] == pytest.approx(math.log10(1 / 3 + 2 / 3 * p1["a"]), abs=1e-5)
    assert arpa[("a",)][1] == pytest.approx(math.log10(0.75), abs=1e-5)
    assert arpa[("b",)][1] == pytest.approx(math.log10(2 / 3), abs=1e-5)
    assert arpa[("<s>",)] == (-99.0, 0.0)
    assert (tmp_path / "lexicon.txt").read_text().split("\n")[:3] == ["a\ta |", "b\tb |", "c\tc |"]
    assert main(["lm", "build", "--counts", counts, str(tmp_path / "a.arpa"), str(tmp_path / "b.arpa")]) == 2
    assert "takes one path" in capsys.readouterr().err


def test_every_context_of_a_counts_lm_sums_to_one_when_pair_counts_are_on_a_larger_scale(tmp_path):
    # pair counts from a corpus 50 times larger than the word counts' ("devoid of" stands for a word
    # nearly always followed by one listed word), and pruned: most words have few listed pairs
    words = {f"w{i}": 1000 // (i + 1) for i in range(40)} | {"devoid": 10}
    pairs = {
        f"w{i} w{(3 * i + j) % 40}": 50 * (1000 // (i + 1)) // (j + 3)
        for i in range(0, 40, 2)
        for j in range(1 + i % 4)
    }
    pairs["devoid w0"] = 50 * 10
    build_arpa_from_counts(*write_counts(tmp_path, words, pairs).split(","), tmp_path / "lm.arpa")
    arpa = read_arpa(tmp_path / "lm.arpa")
    vocabulary = [*words, "</s>", "<unk>"]
    assert sum(10 ** arpa[(w,)][0] for w in vocabulary) == pytest.approx(1.0, abs=1e-4)
    for context in [*words, "<s>"]:
        assert sum(arpa_probability(arpa, context, w) for w in vocabulary) == pytest.approx(1.0, abs=1e-4), context
    # the scale comes from "devoid": on the word counts' scale, w0 follows "w0" in (50 * 1000 / 3) / 50
    # of its 1000 occurrences (a third, plus a share of the back-off); without the scale it would be ~1
    assert 1 / 3 - 1e-3 < arpa_probability(arpa, "w0", "w0") < 0.75 and arpa_probability(arpa, "devoid", "w0") > 0.99


def test_the_general_english_lm_from_symspellpys_counts_loads_in_kenlm_and_fixes_a_misheard_word(tmp_path):
    lm, lexicon = tmp_path / "general.arpa", tmp_path / "lexicon.txt"
    assert main(["lm", "build", "--counts", "symspellpy", str(lm), "--lexicon", str(lexicon)]) == 0
    arpa = read_arpa(lm)
    assert len([g for g in arpa if len(g) == 1]) > 80_000 and len([g for g in arpa if len(g) == 2]) > 240_000
    vocabulary = [g[0] for g in arpa if len(g) == 1 and g != ("<s>",)]
    for context in ("the", "of", "king", "<s>"):
        assert sum(arpa_probability(arpa, context, w) for w in vocabulary) == pytest.approx(1.0, abs=1e-3), context
    assert arpa_probability(arpa, "of", "the") > arpa_probability(arpa, "of", "thee")
    vocab = Vocabulary()
    log_probs = emissions(spell("the kinj said", {7: {"j": 0.6, "g": 0.3}}), vocab)
    lengths = torch.tensor([log_probs.shape[1]])
    assert greedy_decode(log_probs, lengths, vocab) == ["the kinj said"]
    decoder = BeamSearchDecoder(vocab, lm=str(lm), lexicon=str(lexicon), beam_size=20, lm_weight=1.0)
    assert decoder(log_probs, lengths) == ["the king said"]


@pytest.mark.parametrize("searched", ["lexicon", "lexicon-free"])
def test_the_beam_search_shortcut_gives_what_torchaudios_public_call_gives(tmp_path, searched):
    # BeamSearchDecoder runs flashlight's search itself (torchaudio's CTCDecoder.decoder) to skip
    # turning every hypothesis into tensors; the public call must find the same best transcript
    vocabulary = Vocabulary()
    lm, lexicon = cat_and_dog_lm(tmp_path)
    if searched == "lexicon-free":
        (tmp_path / "chars.txt").write_text("the cat sat\nthe dog sat\na cat ran\n" * 3)
        build_arpa(tmp_path / "chars.txt", tmp_path / "chars.arpa", order=3, characters=True)
        lm, lexicon = str(tmp_path / "chars.arpa"), ""
    silence = [{"-": 0.9999}] * 3
    frames = silence + spell("the dug sat", {5: {"u": 0.6, "o": 0.3}}) + silence + spell("a cet", {3: {"e": 0.5}})
    log_probs = emissions(frames, vocabulary)
    decoder = BeamSearchDecoder(vocabulary, lm=lm, lexicon=lexicon, beam_size=20, lm_weight=1.0)
    ours = decoder(log_probs, torch.tensor([log_probs.shape[1]]))[0]
    searched_frames = (
        log_probs if not lexicon else torch.cat([log_probs, torch.from_numpy(decoder._boundary_frame)[None]], 1)
    )
    best = decoder.decoder(searched_frames.float().contiguous())[0][0]  # torchaudio's public CTCDecoder.__call__
    theirs = " ".join(vocabulary.decode(best.tokens.tolist()).split())
    assert ours == theirs and ours.startswith("the dog sat")  # the LM at work: "dug" is no word it knows


def test_loading_an_lm_keeps_kenlms_banner_off_the_terminal(tmp_path, capfd):
    lm, lexicon = cat_and_dog_lm(tmp_path)
    capfd.readouterr()
    BeamSearchDecoder(Vocabulary(), lm=lm, lexicon=lexicon)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # KenLM prints "Loading the LM will be faster ..." and a bar of stars
