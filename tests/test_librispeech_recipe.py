"""The LibriSpeech recipe's stage logic, run on a tiny LibriSpeech-layout folder made here."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from asr.checkpoint import load_model_file
from asr.cli import main

from .conftest import speech, write_wav

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "librispeech" / "run.sh"


@pytest.fixture(scope="module")
def tiny_librispeech(tmp_path_factory) -> Path:
    """Speakers 84, 174 (the test set) and 2 others, two utterances each, as FLAC."""
    root = tmp_path_factory.mktemp("ls") / "LibriSpeech" / "dev-clean"
    texts = ["ONE TWO THREE", "FOUR FIVE", "SIX SEVEN", "EIGHT NINE ZERO"]
    for speaker in ("84", "174", "251", "422"):
        chapter = root / speaker / "100"
        chapter.mkdir(parents=True)
        lines = []
        for n, text in enumerate(texts[:2] if speaker in ("84", "174") else texts):
            utterance = f"{speaker}-100-{n:04d}"
            write_wav(chapter / f"{utterance}.flac", speech(text.lower()))
            lines.append(f"{utterance} {text}")
        (chapter / f"{speaker}-100.trans.txt").write_text("\n".join(lines) + "\n")
    return root.parent


def tiny_overrides(exp_dir: Path) -> list[str]:
    """A model small enough to train an epoch in seconds, into ``exp_dir``."""
    return [
        "model.hidden_size=16",
        "model.num_layers=1",
        "model.conv_channels=4",
        "train.epochs=1",
        f"train.exp_dir={exp_dir}",
        "data.max_batch_seconds=20",
    ]


def run(*args, cwd=None, env=None):
    return subprocess.run(["bash", str(RECIPE), *args], capture_output=True, text=True, cwd=cwd, timeout=900, env=env)


def test_stages_prepare_train_and_evaluate_a_speaker_split(tiny_librispeech, tmp_path):
    exp = tmp_path / "exp"
    data = tmp_path / "data"
    common = [
        "--config",
        "config_cpu.yaml",
        "--subset-dir",
        os.path.relpath(tiny_librispeech, tmp_path),  # relative to the working directory, tmp_path
        "--data-dir",
        str(data),
        "--synthetic-copies",
        "0",
    ]
    tiny = tiny_overrides(exp)

    prepared = run(
        *common, "--stage", "1", "--stop-stage", "1", *tiny, cwd=tmp_path
    )  # relative --subset-dir works from anywhere
    assert prepared.returncode == 0, prepared.stderr
    assert "stage 1" in prepared.stdout and "stage 2" not in prepared.stdout and not exp.exists()
    speakers = {
        name: {
            Path(json.loads(line)["audio_filepath"]).name.split("-")[0]
            for line in (data / f"{name}.jsonl").read_text().splitlines()
        }
        for name in ("train", "dev", "test")
    }
    # 422 is one of the default dev speakers (422 and 1673): held out of training, for LM weights and the best epoch
    assert speakers == {"train": {"251"}, "dev": {"422"}, "test": {"84", "174"}}

    # one LM weight pair, to keep the test short; the general LM is built from symspellpy's counts
    trained = run(
        *common, "--stage", "2", *tiny, cwd=tmp_path, env={**os.environ, "LM_WEIGHTS": "1", "WORD_SCORES": "0"}
    )
    assert trained.returncode == 0, trained.stderr
    assert "stage 2" in trained.stdout and "stage 3" in trained.stdout and "stage 1" not in trained.stdout
    assert "4 training utterances (0.0 h), 4 dev" in trained.stderr  # dev WER each epoch
    assert "general English bigram LM" in trained.stdout and f"tuned on {data / 'dev.jsonl'}" in trained.stdout
    results = (exp / "results.txt").read_text().splitlines()
    assert results[0].startswith("test greedy: WER ") and "(4 utterances)" in results[0]
    assert results[1].startswith("test word LM: WER ") and "(4 utterances)" in results[1]
    assert (exp / "decode_test.jsonl").exists() and (exp / "decode_test_lm.jsonl").exists()
    assert 'id="utterances">4<' in (exp / "report_test.html").read_text(encoding="utf-8")
    assert load_model_file(exp / "model_lm.pt")["config"]["decoding"]["lm"].endswith("general_2gram.arpa")

    # with LibriSpeech's official LM in --lm-dir (as data_scripts/download_lm.py leaves it), that one is used
    official = tmp_path / "lm"
    official.mkdir()
    (official / "text.txt").write_text("one two three\nfour five\nsix seven\neight nine zero\n")
    assert (
        main(
            [
                "lm",
                "build",
                str(official / "text.txt"),
                str(official / "3-gram.pruned.1e-7.arpa"),
                "--lexicon",
                str(official / "lexicon.txt"),
            ]
        )
        == 0
    )
    with_official = run(
        *common,
        "--stage",
        "3",
        "--lm-dir",
        str(official),
        *tiny,
        cwd=tmp_path,
        env={**os.environ, "LM_WEIGHTS": "1", "WORD_SCORES": "0"},
    )
    assert with_official.returncode == 0, with_official.stderr
    assert "LibriSpeech's official 3-gram LM" in with_official.stdout and "general English" not in with_official.stdout
    assert load_model_file(exp / "model_lm.pt")["config"]["decoding"]["lm"] == str(official / "3-gram.pruned.1e-7.arpa")


def test_synthetic_copies_pretrain_on_spoken_phrases_then_train_on_the_mix(tiny_librispeech, tmp_path):
    exp, data = tmp_path / "exp", tmp_path / "data"
    common = [
        "--config",
        "config_cpu.yaml",
        "--subset-dir",
        str(tiny_librispeech),
        "--data-dir",
        str(data),
        "--synthetic-copies",
        "2",
    ]
    tiny = tiny_overrides(exp)

    done = run(*common, "--stop-stage", "2", *tiny)
    assert done.returncode == 0, done.stderr
    real = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    synthetic = [json.loads(line) for line in (data / "synthetic" / "synthetic.jsonl").read_text().splitlines()]
    mixed = [json.loads(line) for line in (data / "train_mixed.jsonl").read_text().splitlines()]
    # the training texts cut into phrases of at most 5 words, each spoken twice
    assert sorted(w for r in synthetic for w in r["text"].split()) == sorted(
        w for r in real * 2 for w in r["text"].split()
    )
    assert all(len(r["text"].split()) <= 5 for r in synthetic)
    # each time by a random voice (its name holds the index, so look at its accent and rate)
    assert len({r["voice"].split("+")[0] for r in synthetic}) > 1 and len({r["rate"] for r in synthetic}) > 1
    copies = {}
    for r in synthetic:
        copies.setdefault(r["text"], []).append((r["voice"].split("+")[0], r["rate"]))
    assert sum(len(set(spoken)) > 1 for spoken in copies.values() if len(spoken) > 1) > 0
    assert all(0.5 < r["duration"] < 10 and (data / "synthetic" / r["audio_filepath"]).is_file() for r in synthetic)
    assert len(mixed) == len(real) + len(synthetic) and all(Path(r["audio_filepath"]).is_absolute() for r in mixed)
    log = done.stdout + done.stderr
    assert f"{len(synthetic)} training utterances" in log and (exp / "pretrain" / "model.pt").exists()  # stage 2a
    # then, by default, the real speech alone, from the pretrained model
    assert f"{len(real)} training utterances" in log and f"weights from {exp / 'pretrain' / 'model.pt'}" in log
    assert (exp / "model.pt").exists()
    mixed_run = run(
        *common,
        "--stage",
        "2",
        "--stop-stage",
        "2",
        "--then-train-on",
        "mixed",
        *tiny[:-2],
        f"train.exp_dir={tmp_path / 'mixed'}",
        "data.max_batch_seconds=20",
    )
    assert mixed_run.returncode == 0, mixed_run.stderr
    assert f"{len(mixed)} training utterances" in mixed_run.stderr
    assert (
        "--then-train-on must be real or mixed" in run(*common, "--stage", "2", "--then-train-on", "both", *tiny).stderr
    )


def test_extra_speech_joins_the_real_speech_as_weighted_corpora(tiny_librispeech, tmp_path):
    exp, data, extra = tmp_path / "exp", tmp_path / "data", tmp_path / "extra"
    extra.mkdir()
    lines = []
    for n, text in enumerate(["two four", "six eight", "nine one"]):
        write_wav(extra / f"{n}.wav", speech(text, voice="en-GB-x-rp"))
        lines.append(json.dumps({"audio_filepath": f"{n}.wav", "duration": 1.0, "text": text}))
    (extra / "people.jsonl").write_text("\n".join(lines) + "\n")
    tiny = tiny_overrides(exp)
    common = ["--config", "config_cpu.yaml", "--subset-dir", str(tiny_librispeech), "--data-dir", str(data)]
    common += ["--synthetic-copies", "0"]
    done = run(*common, "--stop-stage", "2", "--extra-speech", f"{extra}/people.jsonl:3", *tiny)
    assert done.returncode == 0, done.stderr
    corpora = load_model_file(exp / "model.pt")["config"]["data"]["train_manifests"]
    hours = sum(json.loads(line)["duration"] for line in (data / "train.jsonl").read_text().splitlines()) / 3600
    assert [(c["name"], c["weight"]) for c in corpora] == [("train", round(hours, 4)), ("people", 3.0)]
    assert "epoch 1 draws: train " in done.stderr and "; people " in done.stderr
    columns = (exp / "train_log.csv").read_text().splitlines()[1].split(",")
    assert columns[-1].startswith("train=") and " people=" in columns[-1]
    missing = run(*common, "--stage", "2", "--extra-speech", f"{extra}/none.jsonl", *tiny)
    assert missing.returncode == 2
    assert missing.stderr == f"run.sh: --extra-speech {extra}/none.jsonl: no such manifest\n"


def test_a_neural_share_of_the_synthetic_phrases_is_spoken_by_the_piper_voice(tiny_librispeech, tmp_path):
    data = tmp_path / "data"
    common = ["--config", "config_cpu.yaml", "--subset-dir", str(tiny_librispeech), "--data-dir", str(data)]
    done = run(*common, "--synthetic-copies", "1", "--synthetic-neural-share", "1", "--stop-stage", "1")
    assert done.returncode == 0, done.stderr
    synthetic = [json.loads(line) for line in (data / "synthetic" / "synthetic.jsonl").read_text().splitlines()]
    assert synthetic and {r["voice"] for r in synthetic} == {"piper-joe"}
