"""``asr adapt``: a few utterances of a voice the model hears badly make it hear that voice better,
and it still hears the others."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from asr.adapt import AdaptOptions, split_held_out
from asr.checkpoint import load_model_file
from asr.data import Utterance, read_manifest, write_manifest
from asr.digits import digit_string
from asr.evaluate import evaluate
from asr.recognizer import load_model
from asr.speech_corpus import SynthesisJob, synthesize_jobs
from asr.synthesis import random_variant, robotic_lines
from asr.train import train

from .conftest import run_cli


def new_voice(folder: Path, name: str, count: int, seed: int) -> Path:
    """``count`` digit strings spoken by one random robotic voice no training heard (the same
    voice for any ``seed``; ``seed`` draws the digits and eSpeak's jitter): their manifest."""
    definition = random_variant(random.Random(11)) + robotic_lines(random.Random(12))
    rng = random.Random(seed)
    (folder / "wavs" / name).mkdir(parents=True)
    jobs = [
        SynthesisJob(
            path=str(folder / "wavs" / name / f"{i:03d}.wav"),  # the manifest's paths: relative to folder
            spoken=digit_string(rng, 2, 5),
            voice="en-us+newvoice",
            variant_definition=definition,
            rate=150,
            pitch=50,
            pitch_range=50,
            sample_rate=16000,
            noise_snr_db=40.0,
            seed=seed * 1000 + i,
        )
        for i in range(count)
    ]
    manifest = folder / f"{name}.jsonl"
    write_manifest(manifest, synthesize_jobs(jobs, 1, name))
    return manifest


@pytest.fixture(scope="module")
def new_voice_sets(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("new_voice")
    return {"adapt": new_voice(folder, "adapt", 30, seed=1), "check": new_voice(folder, "check", 20, seed=2)}


def test_adapting_on_a_new_voice_lowers_its_wer_and_keeps_the_others(
    trained_digits_model, trained_digits_corpus, new_voice_sets, tmp_path
):
    check, others = read_manifest(new_voice_sets["check"]), read_manifest(trained_digits_corpus["test"])
    original = load_model(trained_digits_model, device="cpu")
    before, others_before = evaluate(original, check, progress=False), evaluate(original, others, progress=False)
    assert before.wer > 0.15, f"the new voice must be hard for the model to show anything: {before}"

    out = tmp_path / "adapted.pt"
    settings = ["--steps", "60", "--lr", "5e-4", "--stay-close", "0.01"]  # a small model learns faster
    result = run_cli("adapt", trained_digits_model, new_voice_sets["adapt"], "-o", out, *settings)
    assert result.returncode == 0, result.stderr
    assert "held out (6 utterances), before:" in result.stdout and f"{out}: adapted" in result.stdout

    adapted = load_model(out, device="cpu")
    after, others_after = evaluate(adapted, check, progress=False), evaluate(adapted, others, progress=False)
    assert after.wer < 0.8 * before.wer, (before, after)  # utterances adapting never saw
    assert others_after.wer <= others_before.wer + 0.03, (others_before, others_after)
    assert adapted.config.decoding == original.config.decoding


def test_the_held_out_part_is_spread_over_the_set():
    utterances = [Utterance(Path(f"{i}.wav"), 1.0, "one") for i in range(10)]
    kept, held = split_held_out(utterances, 0.2)
    assert [u.audio_filepath.name for u in held] == ["4.wav", "9.wav"]
    assert len(kept) == 8 and not {u.audio_filepath for u in kept} & {u.audio_filepath for u in held}
    with pytest.raises(ValueError, match="at least 2 utterances"):
        split_held_out(utterances[:1], 0.2)


@pytest.mark.parametrize(
    "arguments, problem",
    [
        (["--held-out", "1"], "argument --held-out: 1 is not a number between 0 and 1"),
        (["--steps", "0"], "argument --steps: 0 is less than 1"),
        (["--lr", "-1"], "argument --lr: -1 is not a positive finite number"),
        (["--freeze", "decoder"], "train.freeze: no parameter name starts with 'decoder'"),
    ],
)
def test_bad_adapt_settings_get_a_one_line_error(trained_digits_model, new_voice_sets, tmp_path, arguments, problem):
    out = tmp_path / "adapted.pt"
    result = run_cli("adapt", trained_digits_model, new_voice_sets["adapt"], "-o", out, *arguments)
    assert result.returncode == 2
    assert problem in result.stderr.strip().splitlines()[-1]
    assert not out.exists()


def test_adapt_options_are_checked():
    with pytest.raises(ValueError, match="lr must be positive and finite"):
        AdaptOptions(lr=float("nan"))


def test_stay_close_keeps_fine_tuned_weights_near_the_ones_it_started_from(tiny_config, tmp_path):
    start = train(tiny_config)
    moved = {}
    for strength in (0.0, 100.0):
        config = dataclasses.replace(
            tiny_config,
            train=dataclasses.replace(
                tiny_config.train, exp_dir=str(tmp_path / f"sc{strength}"), init_from=str(start), stay_close=strength
            ),
        )
        before, after = load_model_file(start)["state_dict"], load_model_file(train(config))["state_dict"]
        moved[strength] = sum(float((after[k].float() - before[k].float()).norm()) for k in before if "weight" in k)
    assert 0 < moved[100.0] < 0.5 * moved[0.0], moved
