"""The digits recipe's decoding stages (greedy, then LM + lexicon tuned on a tuning set of the dev
voices, then the real-voice check), on a model trained here; the recordings of people it ships."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from asr.digits import DIGIT_WORDS
from asr.recognizer import load_model

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digits" / "run.sh"


def test_stages_2_to_4_score_greedy_then_tune_and_score_lexicon_beam_search(
    trained_digits_corpus, trained_digits_model, tmp_path
):
    recipe = tmp_path / "recipes" / "digits"  # the repository's layout: run.sh finds ../../data_scripts
    (recipe / "exp").mkdir(parents=True)
    for scripts in ("data_scripts", "benchmarks"):
        (tmp_path / scripts).symlink_to(RECIPE.parents[2] / scripts)
    shutil.copy(RECIPE, recipe / "run.sh")
    shutil.copy(RECIPE.parents[1] / "common.sh", recipe.parent / "common.sh")
    (recipe / "data").symlink_to(trained_digits_corpus["train"].parent)
    for name in ("model.pt", "train_log.csv", "dev_log.csv"):
        shutil.copy(Path(trained_digits_model).parent / name, recipe / "exp" / name)

    # Stage 5 scores "recordings of people" (here other eSpeak voices) given relative to where run.sh starts.
    people = [json.loads(line) for line in trained_digits_corpus["test"].read_text().splitlines()[:4]]
    for row in people:
        row["audio_filepath"] = str(trained_digits_corpus["test"].parent / row["audio_filepath"])
    (tmp_path / "people.jsonl").write_text("".join(json.dumps(row) + "\n" for row in people))
    tune_set = dict(os.environ, TUNE_UTTERANCES="40", REAL_DIGITS="people.jsonl")
    done = subprocess.run(
        ["bash", str(recipe / "run.sh"), "--stage", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        env=tune_set,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "stage 1" not in done.stdout and all(f"stage {n}" in done.stdout for n in (2, 3, 4, 5))
    real = [line.split("\t") for line in done.stdout.splitlines() if line.startswith(str(tmp_path / "people.jsonl"))]
    assert [row[1] for row in real] == ["greedy", "beam"] and all("4 utterances (0 not digits)" in r[3] for r in real)
    assert (recipe / "exp" / "real_digits" / "people_beam.html").is_file()
    greedy, beam = [
        float(wer)
        for wer in re.findall(r"^WER (\d+\.\d\d)% CER \d+\.\d\d% \(40 utterances\)$", done.stdout, flags=re.M)
    ]

    tune = [json.loads(line) for line in (recipe / "data" / "tune" / "dev.jsonl").read_text().splitlines()]
    assert len(tune) == 40 and "tuning on data/tune/dev.jsonl" in done.stdout
    words = {line.split("\t")[0] for line in (recipe / "exp" / "lexicon.txt").read_text().splitlines()}
    assert words == set(DIGIT_WORDS) | {"oh"}
    tuned = load_model(recipe / "exp" / "model_lm.pt", device="cpu")
    # the tuned model carries the LM and lexicon stage 3 built (unpacked from it on loading)
    assert Path(tuned.config.decoding.lexicon).read_bytes() == (recipe / "exp" / "lexicon.txt").read_bytes()
    assert Path(tuned.config.decoding.lm).read_bytes() == (recipe / "exp" / "lm.arpa").read_bytes()
    rows = [json.loads(line) for line in (recipe / "exp" / "decode_test_lm.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and all(set(row["hypothesis"].split()) <= words for row in rows)
    report = (recipe / "exp" / "report.html").read_text(encoding="utf-8")  # stage 2's page of the greedy errors
    assert f'id="wer">{greedy:.2f}%<' in report and "<h2>Training</h2>" in report
    assert beam <= greedy  # the lexicon turns clipped non-words back into digits


def test_the_recordings_of_people_shipped_with_the_recipe_read_and_are_digits():
    from asr.data import read_manifest
    from asr.digits import is_digit_text

    real = RECIPE.parent / "real"
    utterances = read_manifest(real / "train.jsonl")
    assert len(utterances) == 124 and all(is_digit_text(u.text) for u in utterances)
    assert sum(u.duration for u in utterances) == pytest.approx(327, abs=1)
    assert len({u.speaker for u in utterances}) == 50
    kept_out = set(re.search(r"not committed\):\n(.*?)\.\n", (real / "README.md").read_text(), re.S)[1].split())
    assert len(kept_out) == 24 and not kept_out & {u.speaker for u in utterances}  # the speakers chosen on
    assert "Carnegie Mellon University" in (real / "LICENSE").read_text()
    assert sorted(p.name for p in (real / "audio").iterdir()) == sorted(u.audio_filepath.name for u in utterances)
