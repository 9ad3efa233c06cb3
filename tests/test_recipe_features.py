"""Training features of a real recipe: noise mixing, gradient accumulation, early stopping, averaging."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.checkpoint import load_checkpoint, load_model_file
from asr.augment import NoiseMixer, Reverberator, room_impulse_response
from asr.data import DurationBatchSampler, read_manifest
from asr.train import average_model_files, train

from .conftest import write_wav


def test_noise_is_mixed_at_an_snr_in_the_range_and_is_reproducible(tmp_path):
    rng = np.random.default_rng(0)
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    write_wav(noise_dir / "hum.wav", (0.3 * np.sin(2 * np.pi * 50 * np.arange(8000) / 16000)).astype(np.float32))
    write_wav(noise_dir / "hiss.flac", (0.05 * rng.standard_normal(24000)).astype(np.float32))
    speech = (0.1 * rng.standard_normal(40000)).astype(np.float32)  # longer than either noise file
    mixer = NoiseMixer(noise_dir, probability=1.0, snr_db=[5.0, 10.0], seed=3)
    for index in range(8):
        mixed = mixer(speech, epoch=0, index=index)
        added = mixed - speech
        snr = 10 * np.log10(np.mean(speech**2) / np.mean(added**2))
        assert 5.0 - 0.01 <= snr <= 10.0 + 0.01
        assert np.array_equal(mixed, mixer(speech, epoch=0, index=index))  # same (seed, epoch, index): same noise
    assert not np.array_equal(mixer(speech, 0, 0), mixer(speech, 1, 0))
    never = NoiseMixer(noise_dir, probability=0.0, snr_db=[5.0, 10.0])
    assert never(speech, 0, 0) is speech
    with pytest.raises(ValueError, match="no audio files"):
        NoiseMixer(tmp_path / "exp_missing", 0.5, [5.0, 10.0])


def test_a_synthetic_room_response_has_its_direct_to_reverberant_ratio_and_decays_60_db_in_rt60():
    rt60, sample_rate = 0.5, 16000
    response = room_impulse_response(rt60, 6.0, sample_rate, seed=5)
    assert len(response) == round(rt60 * sample_rate) and response[0] == 1.0
    assert 10 * np.log10(1.0 / np.sum(response[1:] ** 2)) == pytest.approx(6.0, abs=1e-3)
    tenth = len(response) // 10  # energy of the tail's first and last tenth: 54 dB apart at a 60 dB fall
    fall_db = 10 * np.log10(np.sum(response[1 : tenth + 1] ** 2) / np.sum(response[-tenth:] ** 2))
    assert 51 < fall_db < 57
    assert np.array_equal(response, room_impulse_response(rt60, 6.0, sample_rate, seed=5))


def test_reverberation_keeps_length_and_level_smears_a_click_and_is_reproducible():
    click = np.zeros(16000, np.float32)
    click[1000] = 1.0
    room = Reverberator(probability=1.0, rt60_seconds=[0.3, 0.6], seed=2)
    for index in range(4):
        wet = room(click, epoch=0, index=index)
        assert len(wet) == len(click) and wet.dtype == np.float32
        assert np.sqrt(np.mean(wet**2)) == pytest.approx(np.sqrt(np.mean(click**2)), rel=1e-3)
        assert np.abs(wet[:1000]).max() < 1e-6  # nothing before the sound (FFT rounding aside)
        assert np.abs(wet[1100:4000]).max() > 0.01 * np.abs(wet).max()  # a tail after it
        assert np.array_equal(wet, room(click, epoch=0, index=index))
    assert not np.array_equal(room(click, 0, 0), room(click, 1, 0))
    assert Reverberator(0.0, [0.3, 0.6])(click, 0, 0) is click
    with pytest.raises(ValueError, match="data.reverb_rt60"):
        Reverberator(0.5, [0.0, 0.6])


def test_make_noise_writes_each_colour_at_minus_20_dbfs_with_its_spectral_slope(tmp_path):
    script = Path(__file__).parents[1] / "data_scripts" / "make_noise.py"
    subprocess.run([sys.executable, str(script), str(tmp_path), "--seconds", "4"], check=True, capture_output=True)
    octave_power = {}
    for kind in ("white", "pink", "brown", "hum"):
        audio, rate = sf.read(tmp_path / f"{kind}.wav")
        assert rate == 16000 and len(audio) == 4 * 16000
        assert 10 * np.log10(np.mean(audio**2)) == pytest.approx(-20.0, abs=0.01)
        spectrum = np.abs(np.fft.rfft(audio)) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1 / rate)
        low, high = (spectrum[(freqs >= f) & (freqs < 2 * f)].sum() for f in (250, 4000))
        octave_power[kind] = 10 * np.log10(low / high)  # 250-500 Hz against 4-8 kHz, 4 octaves up
        if kind == "hum":
            assert spectrum[freqs < 200].sum() > 0.99 * spectrum.sum()  # 50, 100 and 150 Hz
    assert octave_power["white"] == pytest.approx(-12.0, abs=1.0)  # flat per Hz: the high octave has 16x the Hz
    assert octave_power["pink"] == pytest.approx(0.0, abs=1.0)  # the same power per octave
    assert octave_power["brown"] == pytest.approx(12.0, abs=1.0)  # 1/f^2: 3 dB less per octave than pink


def test_gradient_accumulation_takes_one_step_per_group_of_batches(tiny_config):
    seen = []
    tiny_config.train.accumulate_batches = 3
    train(tiny_config, lambda progress, indices, model: seen.append((progress.step, len(indices))))
    durations = [u.duration for u in read_manifest(tiny_config.data.train_manifest, None)]
    batches = len(
        DurationBatchSampler(durations, tiny_config.data.max_batch_seconds, seed=tiny_config.train.seed).epoch_batches(
            0
        )
    )
    assert len(seen) == -(-batches // 3)
    assert sum(n for _, n in seen) == 48  # every utterance once


def test_early_stopping_ends_training_when_dev_wer_stops_improving(tiny_config):
    tiny_config.train.epochs = 6
    tiny_config.train.lr = 0.0  # the dev WER cannot improve after the first evaluation
    tiny_config.train.early_stopping_patience = 2
    train(tiny_config)
    progress = load_checkpoint(f"{tiny_config.train.exp_dir}/checkpoint.pt")["progress"]
    assert progress["epoch"] == 3 and progress["evaluations_since_best"] == 2


def test_the_best_model_is_chosen_by_the_configured_dev_metric(tiny_config):
    tiny_config.train.epochs = 2
    tiny_config.train.best_metric = "cer"
    model_path = train(tiny_config)
    progress = load_checkpoint(f"{tiny_config.train.exp_dir}/checkpoint.pt")["progress"]
    best = load_model_file(model_path.parent / "best.pt")
    assert progress["best_dev_score"] == best["dev_cer"] and 0 < best["dev_cer"] <= 1.5
    tiny_config.train.best_metric = "bleu"
    with pytest.raises(ValueError, match="train.best_metric must be wer or cer, not 'bleu'"):
        train(tiny_config)


def test_the_last_epochs_are_averaged_into_the_model_file(tiny_config, tmp_path):
    tiny_config.train.epochs = 3
    tiny_config.train.average_last = 2
    tiny_config.data.dev_manifest = ""  # without a dev set the average is kept as it is
    model_path = train(tiny_config)
    exp = model_path.parent
    assert sorted(p.name for p in exp.glob("epoch-*.pt")) == ["epoch-2.pt", "epoch-3.pt"]
    model = load_model_file(model_path)
    assert model["averaged_from"] == ["epoch-2.pt", "epoch-3.pt"]
    two, three = (load_model_file(exp / f"epoch-{n}.pt")["state_dict"] for n in (2, 3))
    for name, tensor in model["state_dict"].items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (two[name] + three[name]) / 2, atol=1e-6), name
    assert average_model_files([exp / "epoch-3.pt"])["state_dict"]["output.weight"].equal(three["output.weight"])


def test_training_runs_every_epoch_when_the_number_of_batches_varies(tiny_config):
    tiny_config.train.epochs = 3
    tiny_config.data.speed_perturbation = [0.8, 1.0, 1.2]
    durations = [u.duration for u in read_manifest(tiny_config.data.train_manifest, None)]
    sampler = DurationBatchSampler(
        durations, tiny_config.data.max_batch_seconds, seed=tiny_config.train.seed, speeds=[0.8, 1.0, 1.2]
    )
    assert len({len(sampler.epoch_batches(e)) for e in range(3)}) > 1  # the case this test is about
    seen = []
    train(tiny_config, lambda progress, indices, model: seen.append((progress.epoch, len(indices))))
    assert load_checkpoint(f"{tiny_config.train.exp_dir}/checkpoint.pt")["progress"]["epoch"] == 3
    assert [sum(n for e, n in seen if e == epoch) for epoch in range(3)] == [48, 48, 48]
