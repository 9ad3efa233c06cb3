import json
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import soundfile as sf

from asr.data import AudioDataset, read_manifest
import asr.digits
import asr.speech_corpus
from asr.digits import split_variants
from asr.speech_corpus import make_synthetic_corpus
from asr.librispeech import make_manifest
from asr.synthesis import add_variant, random_variant, synthesize
from asr.text import Vocabulary

from .conftest import speech


def test_a_larger_dev_share_moves_training_voices_to_dev_and_keeps_the_test_voices():
    usual, wider = split_variants(seed=0), split_variants(seed=0, dev_share=0.2)
    assert wider["test"] == usual["test"]
    assert set(usual["dev"]) < set(wider["dev"]) and set(wider["train"]) < set(usual["train"])
    assert len(wider["dev"]) == round(0.2 * sum(len(v) for v in usual.values()))


def test_digits_corpus_splits_voices_and_reads_back(digits_corpus):
    splits = split_variants(seed=3)
    assert not set(splits["train"]) & set(splits["test"]) and not set(splits["dev"]) & set(splits["test"])
    records = {
        name: [json.loads(line) for line in path.read_text().splitlines()] for name, path in digits_corpus.items()
    }
    assert [len(records[n]) for n in ("train", "dev", "test")] == [48, 8, 8]
    for name in ("dev", "test"):
        assert {r["voice"].split("+")[1] for r in records[name]} <= set(splits[name])
    train_variants = {r["voice"].split("+")[1] for r in records["train"]}
    assert not train_variants & set(splits["test"])
    assert any(v.startswith("random") for v in train_variants)
    utterances = read_manifest(digits_corpus["test"], Vocabulary())
    for utterance in utterances:
        assert sf.info(utterance.audio_filepath).samplerate == 16000
        assert utterance.duration == pytest.approx(sf.info(utterance.audio_filepath).duration, abs=1e-3)


def test_the_same_seed_gives_a_byte_identical_corpus_whatever_the_worker_count(tmp_path, monkeypatch):
    # eSpeak NG's output depends on its random seed and on what its process spoke before: seeded per
    # utterance and spoken in fixed chunks of fresh processes, the audio cannot depend on which
    # worker takes which utterance. Chunks of 3 make the 8 utterances 3 chunks here.
    monkeypatch.setattr(asr.speech_corpus, "SYNTHESIS_CHUNK", 3)
    texts = [
        "one two three",
        "the cat sat",
        "four five",
        "a quick brown fox",
        "six",
        "seven eight nine",
        "oh zero",
        "jumps over",
    ]
    runs = {}
    for workers in (1, 2):
        manifest = make_synthetic_corpus(texts, tmp_path / f"w{workers}", seed=11, workers=workers)
        wavs = sorted((manifest.parent / "wavs" / "synthetic").glob("*.wav"))
        runs[workers] = (manifest.read_text(), [w.read_bytes() for w in wavs])
    assert len(runs[1][1]) == len(texts)
    assert runs[1] == runs[2]
    other_seed = make_synthetic_corpus(texts, tmp_path / "seed12", seed=12, workers=2)
    assert other_seed.read_text() != runs[1][0]


def test_synthesis_workers_leave_no_temporary_folders(tmp_path, monkeypatch):
    # each worker process makes a private copy of eSpeak's data folder; it ends by os._exit, without atexit
    monkeypatch.setattr(asr.speech_corpus, "SYNTHESIS_CHUNK", 1)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))  # the spawned workers' tempfile.gettempdir()
    manifest = make_synthetic_corpus(["one two", "three"], tmp_path / "corpus", seed=11, workers=2)
    assert len(manifest.read_text().splitlines()) == 2
    assert list(temporary.iterdir()) == []


def _speak_and_return(text: str) -> int:
    samples, _ = synthesize(text, "en-US")
    return len(samples)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_process_that_synthesizes_removes_its_folder_when_it_ends(tmp_path, monkeypatch, method):
    # neither child calls shutdown_engine; a forkserver child ends by os._exit, which skips atexit
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1) as processes:
        assert processes.submit(_speak_and_return, "one two").result() > 0
    assert list(temporary.iterdir()) == []


def test_random_variants_speak():
    rng = random.Random(7)
    for i in range(5):
        add_variant(f"test_random_{i}", random_variant(rng))
        samples, rate = synthesize("one two", f"en-US+test_random_{i}")
        assert 0.3 < len(samples) / rate < 3.0
        assert np.sqrt(np.mean(samples**2)) > 0.01
    with pytest.raises(ValueError, match="unknown eSpeak NG voice variant"):
        synthesize("one", "en-US+no_such_variant_xyz")


def test_robotic_voices_change_only_the_random_voices_they_are_drawn_for(tmp_path):
    """``robotic_share`` appends robotic lines to some random voices, from its own generator: every
    utterance's words, voice name and settings stay as without it, and the robotic voices speak."""
    spec = asr.digits.DigitsSpec("train", 40, split_variants(0)["train"])

    def jobs(share):
        rng, robotic_rng = random.Random(0), random.Random("0/robotic")
        generators = (rng, robotic_rng)
        return [asr.digits.espeak_job(spec, i, tmp_path, generators, (0.5, share), 1, 1, 16000, 0) for i in range(40)]

    plain, robotic = jobs(0.0), jobs(0.5)
    changed = [i for i, (a, b) in enumerate(zip(plain, robotic)) if a != b]
    assert 3 <= len(changed) < sum(bool(job.variant_definition) for job in plain)
    for a, b in zip(plain, robotic):
        assert a._replace(variant_definition="") == b._replace(variant_definition="")
        assert b.variant_definition.startswith(a.variant_definition)
    definition = robotic[changed[0]].variant_definition
    assert "tone 100 255" in definition and "echo" in definition.split(plain[changed[0]].variant_definition)[1]
    add_variant("test_robotic", definition)
    samples, rate = synthesize("one two", "en-US+test_robotic")
    assert 0.3 < len(samples) / rate < 3.0 and np.sqrt(np.mean(samples**2)) > 0.01


def test_speed_perturbation_changes_length_reproducibly(digits_corpus):
    utterances = read_manifest(digits_corpus["train"], Vocabulary())[:12]
    plain = AudioDataset(utterances, Vocabulary())
    perturbed = AudioDataset(utterances, Vocabulary(), speeds=[0.9, 1.1], seed=5)
    speeds = [perturbed.speed(i) for i in range(12)]
    assert set(speeds) == {0.9, 1.1}
    for i, speed in enumerate(speeds):
        assert len(perturbed[i][0]) == pytest.approx(len(plain[i][0]) / speed, abs=2)
    again = AudioDataset(utterances, Vocabulary(), speeds=[0.9, 1.1], seed=5)
    assert [again.speed(i) for i in range(12)] == speeds
    again.epoch = 1
    assert [again.speed(i) for i in range(12)] != speeds  # redrawn each epoch


def test_librispeech_layout_to_manifest(tmp_path):
    root = tmp_path / "LibriSpeech" / "dev-clean"
    texts = {"84-121-0000": "ONE TWO", "84-121-0001": "THREE", "174-50-0000": "FOUR FIVE", "251-7-0000": "SIX"}
    for formats, (utterance_id, text) in zip(["FLAC", "WAV", "MP3", "FLAC"], texts.items()):
        speaker, chapter, _ = utterance_id.split("-")
        folder = root / speaker / chapter
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{utterance_id}.{formats.lower()}", speech(text.lower()), 16000, format=formats)
        with (folder / f"{speaker}-{chapter}.trans.txt").open("a") as f:
            f.write(f"{utterance_id} {text}\n")
    out = tmp_path / "manifests"
    assert make_manifest(tmp_path / "LibriSpeech", out / "train.jsonl", exclude_speakers={"84", "174"}) == 1
    assert make_manifest(tmp_path / "LibriSpeech", out / "test.jsonl", include_speakers={"84", "174"}) == 3
    utterances = read_manifest(out / "test.jsonl", Vocabulary())
    assert sorted(u.text for u in utterances) == ["four five", "one two", "three"]
    for u in utterances:
        assert u.duration == pytest.approx(len(speech(u.text)) / 16000, abs=0.06)
    with pytest.raises(ValueError, match="no LibriSpeech transcripts"):
        make_manifest(tmp_path / "LibriSpeech", out / "none.jsonl", include_speakers={"999"})


def test_real_recordings_join_the_training_manifest_as_many_times_as_asked(tmp_path):
    real = tmp_path / "real"
    (real / "audio").mkdir(parents=True)
    rows = [("a.wav", "four two", speech("four two")), ("b.wav", "oh nine", speech("oh nine", voice="en-GB-x-rp"))]
    for name, text, audio in rows:
        sf.write(real / "audio" / name, audio, 16000)
    manifest = real / "train.jsonl"
    manifest.write_text(
        "".join(
            json.dumps({"audio_filepath": f"audio/{n}", "duration": len(a) / 16000, "text": t, "speaker": "s"}) + "\n"
            for n, t, a in rows
        )
    )
    corpus = asr.digits.make_digits_corpus(
        tmp_path / "corpus", 2, 0, 0, seed=1, workers=1, real_manifest=manifest, real_copies=3
    )
    utterances = read_manifest(corpus["train"], Vocabulary())
    assert [u.text for u in utterances[2:]] == ["four two", "oh nine"] * 3
    assert {u.audio_filepath.resolve() for u in utterances[2:]} == {(real / "audio" / n).resolve() for n, _, _ in rows}
    assert all("wavs/train" in str(u.audio_filepath) for u in utterances[:2]) and set(corpus) == {"train"}

    (real / "audio" / "b.wav").unlink()  # a recording that is gone stops the corpus, naming it
    with pytest.raises(ValueError, match="b.wav does not exist"):
        asr.digits.make_digits_corpus(tmp_path / "again", 2, 0, 0, seed=1, workers=1, real_manifest=manifest)


def test_select_digits_copies_digit_utterances_and_keeps_dev_speakers_out_of_train(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    source = tmp_path / "source"
    source.mkdir()
    texts = {"s1": ["one two", "hello"], "s2": ["three oh four"], "s3": ["five six", "Seven!"], "s4": ["eight"]}
    lines = []
    for speaker, spoken in texts.items():
        for i, text in enumerate(spoken):
            sf.write(source / f"{speaker}-{i}.wav", speech(text.lower().strip("!")), 16000)
            lines.append({"audio_filepath": f"{speaker}-{i}.wav", "duration": 1.0, "text": text, "speaker": speaker})
    (source / "m.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    script = Path(__file__).resolve().parents[1] / "data_scripts" / "select_digits.py"
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(script), str(source / "m.jsonl"), str(out), "--dev-share", "0.25"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    splits = {name: read_manifest(out / f"{name}.jsonl") for name in ("train", "dev")}
    assert len(splits["dev"]) >= 1 and len(splits["train"]) + len(splits["dev"]) == 5  # "hello" left out
    assert not {u.speaker for u in splits["train"]} & {u.speaker for u in splits["dev"]}
    for utterance in splits["train"]:
        assert utterance.audio_filepath.parent == (out / "audio").resolve()
        assert utterance.audio_filepath.read_bytes() == (source / utterance.audio_filepath.name).read_bytes()
    assert all(utterance.audio_filepath.parent == source.resolve() for utterance in splits["dev"])  # not copied
    assert len(list((out / "audio").iterdir())) == len(splits["train"])
