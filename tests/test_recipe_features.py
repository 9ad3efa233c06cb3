"""Training features of a real recipe: noise mixing, gradient accumulation, early stopping, averaging."""

import numpy as np
import pytest
import torch

from asr.checkpoint import load_checkpoint, load_model_file
from asr.augment import NoiseMixer
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
