"""Benchmark scripts that are more than a measurement (the learning curve's fit and its run), and the
speed and streaming benchmarks run end to end on tiny data."""

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from .conftest import speech, write_wav

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from learning_curve import epochs_for_share, fit_power_law, in_domain_equivalent, nested_shares  # noqa: E402


def test_the_power_law_fit_recovers_a_and_b_and_shares_nest():
    hours = [0.25, 0.5, 1.0, 2.0]
    a, b = fit_power_law(hours, [0.6 * h**-0.3 for h in hours])
    assert a == pytest.approx(0.6) and b == pytest.approx(0.3)
    records = [{"id": i, "duration": 1.0 + i % 3} for i in range(40)]
    shares = nested_shares(records, [0.25, 0.5, 1.0], seed=1)
    total = sum(r["duration"] for r in records)
    for fraction, share in shares.items():
        assert fraction * total <= sum(r["duration"] for r in share) < fraction * total + 3
    assert shares[0.25] == shares[0.5][: len(shares[0.25])] and len(shares[1.0]) == 40
    assert in_domain_equivalent((0.6, 0.3), 0.6 * 5.0**-0.3) == pytest.approx(5.0)


def test_smaller_shares_train_more_epochs_for_the_same_steps():
    assert [epochs_for_share(f, 10) for f in (0.125, 0.25, 0.5, 1.0)] == [80, 40, 20, 10]
    assert epochs_for_share(0.3, 1) == 3 and epochs_for_share(1.0, 1) == 1
    assert [epochs_for_share(f, 10, equal_steps=False) for f in (0.125, 1.0)] == [10, 10]


def test_learning_curve_trains_each_share_plots_and_predicts(tmp_path):
    root = tmp_path / "LibriSpeech" / "dev-clean"
    texts = ["one two three", "four five", "six seven", "eight nine zero"]
    for speaker in ("84", "174", "251", "422"):
        chapter = root / speaker / "100"
        chapter.mkdir(parents=True)
        lines = []
        for n in range(2 if speaker in ("84", "174") else 4):
            utterance = f"{speaker}-100-{n:04d}"
            write_wav(chapter / f"{utterance}.flac", speech(texts[n]))
            lines.append(f"{utterance} {texts[n].upper()}")
        (chapter / f"{speaker}-100.trans.txt").write_text("\n".join(lines) + "\n")
    other = tmp_path / "other"
    other.mkdir()
    with open(other / "other.jsonl", "w") as manifest:  # another corpus, paths relative to its manifest
        for n, text in enumerate(["two four six", "one three five", "seven eight"]):
            write_wav(other / f"o{n}.wav", speech(text))
            manifest.write(json.dumps({"audio_filepath": f"o{n}.wav", "duration": 1.5, "text": text}) + "\n")
    config = Path(__file__).resolve().parents[1] / "recipes" / "librispeech" / "config_cpu.yaml"
    out = tmp_path / "curve"
    tiny = [
        "model.hidden_size=16",
        "model.num_layers=1",
        "model.conv_channels=4",
        "train.epochs=2",
        "data.max_batch_seconds=20",
        "train.threads=1",
    ]
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "learning_curve.py"),
            str(config),
            str(root.parent),
            "--out-dir",
            str(out),
            *tiny,
            "--extra-speech",
            str(other / "other.jsonl"),
            "--extra-fractions",
            "0.3",
            "1",
            "--extra-rules",
            "steps",
            "epochs",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("\t") for line in (out / "learning_curve.tsv").read_text().splitlines()[1:]]
    measured = [r for r in rows if r[3] == "measured"]
    assert len(measured) == 4 and [float(r[0]) for r in measured] == sorted(float(r[0]) for r in measured)
    assert all(r[4] == r[0] and r[5] == "0" for r in measured)
    for rule in ("steps", "epochs"):  # all in-domain hours + 1 then 3 other files, by each rule
        with_other = [r for r in rows if r[3] == f"measured_with_other_{rule}"]
        assert [float(r[5]) for r in with_other] == pytest.approx([1.5 / 3600, 4.5 / 3600], abs=1e-4)
        assert all(float(r[4]) == float(measured[-1][0]) for r in with_other)
    assert done.stdout.count("h of other speech (equal steps): CER") == 2
    assert done.stdout.count("h of other speech (equal epochs): CER") == 2 and "in-domain hours" in done.stdout
    assert [r[0] for r in rows if r[3] == "predicted"] == ["10", "100"]
    (h1, c1), (h2, c2) = [(float(r[0]), float(r[1])) for r in measured[-2:]]
    through_last_two = {r[0]: float(r[1]) for r in rows if r[3] == "predicted_from_two_largest"}
    for target in ("10", "100"):  # the line through the two largest shares in log-log axes
        expected = c2 * (float(target) / h2) ** (math.log(c2 / c1) / math.log(h2 / h1))
        assert through_last_two[target] == pytest.approx(expected, rel=1e-3, abs=1e-4)
    assert "predicted CER at 10 h" in done.stdout and "predicted CER at 100 h" in done.stdout
    image = matplotlib.image.imread(out / "learning_curve.png")
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert all((out / f"hours_{f}" / "model.pt").exists() for f in ("0.125", "0.25", "0.5", "1"))
    own, other = (float(r) for r in [r for r in rows if r[3] == "measured_with_other_steps"][-1][4:6])
    other_steps = epochs_for_share((own + other) / own, 2)  # equal steps: fewer epochs of more hours
    assert other_steps == 1
    names = ("hours_0.125", "hours_0.25", "hours_0.5", "hours_1", "other_1", "other_1_epochs")
    for name, epochs in zip(names, (16, 8, 4, 2, other_steps, 2)):
        with open(out / name / "train_log.csv") as log:  # equal steps: train.epochs / share
            assert {row["epoch"] for row in csv.DictReader(log)} == {str(e) for e in range(epochs)}  # 0-based
    assert len((out / "other_1" / "train.jsonl").read_text().splitlines()) == 8 + 3


def librispeech_folder(root: Path, texts: list[str]) -> Path:
    """A LibriSpeech-layout chapter of eSpeak utterances of ``texts``."""
    chapter = root / "84" / "100"
    chapter.mkdir(parents=True)
    lines = []
    for n, text in enumerate(texts):
        write_wav(chapter / f"84-100-{n:04d}.flac", speech(text))
        lines.append(f"84-100-{n:04d} {text.upper()}")
    (chapter / "84-100.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def test_transcribe_speed_runs_every_backend_and_pocketsphinx_on_the_same_files(trained_digits_model, tmp_path):
    data = librispeech_folder(tmp_path / "data", ["one two three", "four five six", "seven eight nine"])
    command = [sys.executable, str(BENCHMARKS / "transcribe_speed.py"), str(trained_digits_model), str(data)]
    done = subprocess.run(command + ["--threads", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    table = done.stdout.split("backend | threads")[1].splitlines()[1:]
    rows = {line.split(" | ")[0]: line.split(" | ") for line in table if line.strip()}
    assert set(rows) == {"torch", "torch-int8", "onnxruntime", "onnxruntime-int8", "pocketsphinx"}
    assert all(float(row[2]) > 0 and row[-1].endswith("%") for row in rows.values())  # an RTF and a WER each
    assert rows["onnxruntime"][-1] == rows["torch"][-1]  # the same words
    assert "3/3 transcripts as the first backend's" in done.stdout.split("onnxruntime x1")[1].splitlines()[0]


def test_real_digits_scores_only_the_digit_utterances_as_evaluate_does(trained_digits_model, tmp_path):
    from asr.data import read_manifest
    from asr.evaluate import evaluate
    from asr.recognizer import load_model

    texts = ["one two three", "hello there", "four oh six", "seven eight"]
    lines = []
    for n, text in enumerate(texts):
        write_wav(tmp_path / f"{n}.wav", speech(text, voice="en-GB-x-rp"))
        lines.append(json.dumps({"audio_filepath": f"{n}.wav", "duration": 1.0, "text": text, "speaker": f"s{n % 2}"}))
    manifest = tmp_path / "people.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    command = [sys.executable, str(BENCHMARKS / "real_digits.py"), str(trained_digits_model), str(manifest)]
    done = subprocess.run(command + ["--out-dir", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if "\tgreedy\t" in line]  # no model_lm.pt: no beam
    assert "8 words, 3 utterances (1 not digits)" in line
    decoded = [json.loads(row) for row in (out / "people_greedy.jsonl").read_text().splitlines()]
    assert [row["reference"] for row in decoded] == [texts[0], texts[2], texts[3]]
    assert "<h1>ASR report" in (out / "people_greedy.html").read_text(encoding="utf-8")
    digits = [u for u in read_manifest(manifest) if u.text != "hello there"]
    rates = evaluate(load_model(trained_digits_model, device="cpu"), digits, progress=False)
    assert f"WER {100 * rates.wer:.2f}% CER {100 * rates.cer:.2f}%" in line

    missing = subprocess.run(command + ["--beam-model", str(tmp_path / "no.pt")], capture_output=True, text=True)
    assert missing.returncode != 0 and "no.pt: no such model file" in missing.stderr


def test_stream_latency_prints_the_words_and_latency(trained_digits_model, tmp_path):
    audio = np.concatenate([speech("one two three"), np.zeros(16000, np.float32), speech("four five six")])
    path = write_wav(tmp_path / "a.wav", audio)
    command = [sys.executable, str(BENCHMARKS / "stream_latency.py"), str(trained_digits_model), str(path)]
    done = subprocess.run(command + ["--threads", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "stream vs offline: WER" in done.stdout
    latency = [line for line in done.stdout.splitlines() if line.startswith("word latency")]
    assert latency and "median" in latency[0], done.stdout


def test_report_speed_writes_a_page_of_the_asked_size_and_prints_the_figures(tmp_path):
    decode = tmp_path / "decode.jsonl"
    rows = [
        {"audio_filepath": f"84-1-{i}.wav", "duration": 2.0 + i, "reference": "a b c", "hypothesis": "a c"}
        for i in range(3)
    ]
    decode.write_text("".join(json.dumps(row) + "\n" for row in rows))
    page = tmp_path / "page.html"
    command = [
        sys.executable,
        str(BENCHMARKS / "report_speed.py"),
        str(decode),
        "--utterances",
        "50",
        "--output",
        str(page),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "utterances: 50 (from 3 in" in done.stdout
    assert re.search(r"report: \d+\.\d\d s, \d+\.\d\d MB", done.stdout) and "targets" in done.stdout
    assert page.read_text().count('<div class="utt">') == 50  # 30 worst + the 20 others as the sample


def test_bandwidth_scores_files_as_they_are_and_cut_at_the_band_asked(trained_digits_model, trained_digits_corpus):
    from asr.data import read_manifest
    from asr.evaluate import evaluate
    from asr.recognizer import load_model

    manifest = trained_digits_corpus["test"]
    command = [sys.executable, str(BENCHMARKS / "bandwidth.py"), str(trained_digits_model), str(manifest)]
    done = subprocess.run(command + ["--limit", "6", "--cutoff", "2000"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split("\t")[3] == "cut at 2000 Hz: WER, CER" and row.split("\t")[:2] == [str(manifest), "6"]
    rates = evaluate(load_model(trained_digits_model, device="cpu"), read_manifest(manifest)[:6], progress=False)
    assert row.split("\t")[2] == f"{100 * rates.wer:.2f}%, {100 * rates.cer:.2f}%"  # as evaluate scores them
    full_cer, cut_cer = (float(row.split("\t")[i].split(", ")[1].rstrip("%")) for i in (2, 3))
    assert cut_cer > full_cer  # a 2 kHz band loses what the model was trained to hear above it


def test_hotwords_lists_the_words_the_lexicon_lacks_and_counts_their_recall(trained_digits_model, tmp_path):
    from asr.cli import main
    from asr.decoding import write_lexicon

    texts = ["seven three nine two", "one five", "nine four"]
    lines = []
    for n, text in enumerate(texts):
        write_wav(tmp_path / f"{n}.wav", speech(text, rate=140))
        lines.append(json.dumps({"audio_filepath": f"{n}.wav", "duration": 1.0, "text": text}))
    manifest = tmp_path / "digits.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    words = ["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight"]  # no "nine"
    lexicon = write_lexicon(words, tmp_path / "lexicon.txt")
    model = tmp_path / "lexicon_model.pt"
    assert main(["export-model", str(trained_digits_model), str(model), f"decoding.lexicon={lexicon}"]) == 0
    command = [sys.executable, str(BENCHMARKS / "hotwords.py"), str(model), str(manifest), str(tmp_path / "out")]
    done = subprocess.run(command + ["--boosts", "6"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 hot words; 2 utterances with them, 1 without" in done.stdout
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [(row["boost"], row["recall"]) for row in rows] == [("none", "0/2"), ("6", "2/2")]
    assert (tmp_path / "out" / "hot_6.txt").read_text() == "nine 6\n"
