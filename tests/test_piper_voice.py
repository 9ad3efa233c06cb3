"""The Piper voice (asr.piper_voice): reproducible neural speech for the digits corpus."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import asr.digits
import asr.speech_corpus
from asr.data import read_manifest
from asr.piper_voice import PiperVoice, default_voice_files

from .conftest import in_fresh_process


def _speak(text, seed, length_scale=None):
    from asr.piper_voice import default_voice

    voice = default_voice()
    return voice.synthesize(text, seed, length_scale=length_scale), voice.phoneme_ids(text)


def test_the_same_seed_speaks_the_same_samples_and_slower_is_longer():
    (first, rate), ids = in_fresh_process(_speak, "seven three oh nine", 1)
    (again, _), _ = in_fresh_process(_speak, "seven three oh nine", 1)
    (other, _), _ = in_fresh_process(_speak, "seven three oh nine", 2)
    (slow, _), _ = in_fresh_process(_speak, "seven three oh nine", 1, 1.5)
    assert rate == 22050 and first.dtype == np.float32 and np.array_equal(first, again)
    assert not (len(first) == len(other) and np.array_equal(first, other))
    assert 0.6 < len(first) / rate < 3.0 and len(slow) > 1.3 * len(first)
    assert np.abs(first).max() == pytest.approx(0.95, abs=1e-3) and np.sqrt(np.mean(first**2)) > 0.05
    config = json.loads(default_voice_files()[1].read_text())
    id_map = config["phoneme_id_map"]
    assert ids[:2] == id_map["^"] + id_map["_"] and ids[-1:] == id_map["$"]
    assert ids[3::2] == id_map["_"] * (len(ids[3::2]))  # a pad after every phoneme


def test_a_file_that_is_not_a_piper_voice_is_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "plain.onnx")
    config = json.loads(default_voice_files()[1].read_text())
    (tmp_path / "voice.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="plain.onnx: no RandomNormalLike node"):
        PiperVoice(tmp_path / "plain.onnx", tmp_path / "voice.json")
    del config["phoneme_id_map"]
    (tmp_path / "broken.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="broken.json: not a Piper voice config"):
        PiperVoice(default_voice_files()[0], tmp_path / "broken.json")


def test_the_digits_corpus_adds_neural_utterances_without_changing_the_espeak_ones(tmp_path):
    plain = asr.digits.make_digits_corpus(tmp_path / "plain", 3, 0, 0, seed=4, workers=1)
    mixed = asr.digits.make_digits_corpus(tmp_path / "mixed", 3, 0, 0, seed=4, workers=2, neural_utterances=2)
    again = asr.digits.make_digits_corpus(tmp_path / "again", 3, 0, 0, seed=4, workers=1, neural_utterances=2)
    rows = [json.loads(line) for line in mixed["train"].read_text().splitlines()]
    assert [r["speaker"] for r in rows[3:]] == ["piper-joe", "piper-joe"]
    assert plain["train"].read_text().splitlines() == mixed["train"].read_text().splitlines()[:3]
    assert mixed["train"].read_text() == again["train"].read_text()
    for utterance in read_manifest(mixed["train"]):
        twin = tmp_path / "again" / utterance.audio_filepath.relative_to(mixed["train"].parent)
        assert utterance.audio_filepath.read_bytes() == twin.read_bytes()
    assert all(1 <= len(r["text"].split()) <= 7 for r in rows[3:])


def test_a_share_of_synthetic_phrases_is_spoken_by_the_neural_voice_the_rest_by_the_same_espeak_voices(tmp_path):
    # (not the same samples: eSpeak's state carries over from the utterances spoken before in a chunk)
    texts = ["the cat sat", "on the mat", "a quick brown fox", "jumps over", "the lazy dog", "twice a day"]
    plain = asr.speech_corpus.make_synthetic_corpus(texts, tmp_path / "plain", seed=3, workers=1)
    mixed = asr.speech_corpus.make_synthetic_corpus(texts, tmp_path / "mixed", seed=3, workers=2, neural_share=0.5)
    rows = {name: [json.loads(line) for line in m.read_text().splitlines()] for name, m in [("p", plain), ("m", mixed)]}
    neural = [i for i, r in enumerate(rows["m"]) if r["speaker"] == "piper-joe"]
    assert 0 < len(neural) < len(texts)  # seeded: the same share every run
    assert [r["text"] for r in rows["m"]] == [r["text"] for r in rows["p"]] == texts
    for i, (p, m) in enumerate(zip(rows["p"], rows["m"])):
        if i not in neural:  # an eSpeak utterance has the voice and settings it would have without the neural one
            assert {k: v for k, v in p.items() if k != "duration"} == {k: v for k, v in m.items() if k != "duration"}
    with pytest.raises(ValueError, match="neural_share must be from 0 to 1"):
        asr.speech_corpus.make_synthetic_corpus(texts, tmp_path / "bad", neural_share=1.5)
