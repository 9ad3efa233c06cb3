import csv
import dataclasses
import json
import shutil
from pathlib import Path

import librosa
import pytest
import soundfile as sf
import soxr
import torch

from asr.checkpoint import ModelFileError, load_checkpoint, load_model_file, model_payload
from asr.config import FeatureConfig, ModelConfig, config_from_dict
from asr.data import collate
from asr.features import LogMel
from asr.model import CTCModel
from asr.recognizer import load_model
from asr.text import Vocabulary
from asr.train import train

from .conftest import speech, write_wav


def test_a_few_steps_lower_the_ctc_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    vocabulary = Vocabulary()
    texts = ["one two three", "four five", "six seven eight nine"]
    items = [
        (torch.from_numpy(speech(t, voice=v)), torch.tensor(vocabulary.encode(t)), i, "")
        for i, (t, v) in enumerate(zip(texts, ["en-US", "en-GB-x-rp+f3", "en+m3"]))
    ]
    batch = collate(items)
    features, lengths = LogMel(FeatureConfig())(batch.waveforms, batch.sample_counts)
    model = CTCModel(80, len(vocabulary), ModelConfig(num_layers=2, hidden_size=64, conv_channels=8, dropout=0.0))
    frames = features[torch.arange(features.shape[1])[None] < lengths[:, None]]
    model.normalize.set_statistics(frames.sum(0), (frames**2).sum(0), frames.shape[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        logits, out_lengths = model(features, lengths)
        loss = model.ctc_loss(logits, out_lengths, batch.targets, batch.target_lengths).mean()  # per character
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def _losses(exp_dir):
    with open(exp_dir / "train_log.csv", newline="") as f:
        return {int(row["step"]): float(row["loss"]) for row in csv.DictReader(f)}


def test_resume_gives_the_same_next_step_losses_as_an_uninterrupted_run(tiny_config, tmp_path):
    tiny_config.train.epochs = 2
    # On the CPU. On CUDA (measured on an H100) two uninterrupted runs repeat each other exactly, but a
    # resumed run differed by 1e-4 from its first step: cuDNN's LSTM keeps its own dropout random
    # state, which torch cannot save or restore (pytorch/pytorch#104697).
    tiny_config.train.device = "cpu"
    whole = dataclasses.replace(
        tiny_config, train=dataclasses.replace(tiny_config.train, exp_dir=str(tmp_path / "whole"))
    )
    train(whole)
    reference = _losses(tmp_path / "whole")
    steps = max(reference)
    assert steps >= 6

    interrupted = dataclasses.replace(
        tiny_config, train=dataclasses.replace(tiny_config.train, exp_dir=str(tmp_path / "split"), max_steps=3)
    )
    train(interrupted)  # stops mid-epoch 1 as a crash would, after its checkpoint at step 3
    assert load_checkpoint(tmp_path / "split" / "checkpoint.pt")["progress"]["step"] == 3
    interrupted.train.max_steps = 0
    train(interrupted)
    resumed = _losses(tmp_path / "split")
    assert sorted(resumed) == list(range(1, steps + 1))
    for step in range(1, steps + 1):
        assert resumed[step] == pytest.approx(reference[step], rel=1e-4, abs=1e-4), f"step {step}"


def test_a_crash_between_checkpoints_loses_only_the_steps_since_the_last_one(tiny_config, tmp_path):
    tiny_config.train.device, tiny_config.train.epochs, tiny_config.train.checkpoint_every = "cpu", 2, 3
    whole = dataclasses.replace(
        tiny_config, train=dataclasses.replace(tiny_config.train, exp_dir=str(tmp_path / "whole"))
    )
    train(whole)
    reference = _losses(tmp_path / "whole")
    assert max(reference) >= 6
    crashed = dataclasses.replace(
        tiny_config, train=dataclasses.replace(tiny_config.train, exp_dir=str(tmp_path / "crashed"))
    )

    def crash_at_step_5(progress, indices, model):
        if progress.step == 5:
            raise KeyboardInterrupt  # as a kill would, two steps after the checkpoint of step 3

    with pytest.raises(KeyboardInterrupt):
        train(crashed, observer=crash_at_step_5)
    assert load_checkpoint(tmp_path / "crashed" / "checkpoint.pt")["progress"]["step"] == 3
    assert max(_losses(tmp_path / "crashed")) == 4  # the log has steps the checkpoint does not
    train(crashed)
    resumed = _losses(tmp_path / "crashed")
    with open(tmp_path / "crashed" / "train_log.csv", newline="") as f:
        logged = [int(row["step"]) for row in csv.DictReader(f)]
    assert logged == sorted(reference)  # steps 4 and 5 were redone, and logged once
    for step in reference:
        assert resumed[step] == pytest.approx(reference[step], rel=1e-4, abs=1e-4), f"step {step}"


def test_training_writes_a_model_file_that_loads_without_code(tiny_config):
    model_path = train(tiny_config)
    exp_dir = model_path.parent
    data = torch.load(model_path, weights_only=True)
    assert data["format"] == "asr-model" and data["vocabulary"] == Vocabulary().characters
    assert {"mean", "std"} <= {k.split(".")[-1] for k in data["state_dict"]}
    assert (exp_dir / "best.pt").exists() and (exp_dir / "checkpoint.pt").exists()
    assert not list(exp_dir.glob("*.tmp"))  # atomic writes leave no temporary files
    recognizer = load_model(model_path, device="cpu")
    assert recognizer.model.normalize.std.min() > 0
    with open(exp_dir / "train_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(float(r["audio_seconds_per_second"]) > 0 for r in rows)


def test_files_that_are_not_models_are_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.pt: not a model file"):
        load_model_file(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ModelFileError, match="other.pt: not an asr model file"):
        load_model_file(other)
    future = tmp_path / "future.pt"
    torch.save({"format": "asr-model", "format_version": 99, "asr_version": "9.0"}, future)
    with pytest.raises(ModelFileError, match="format version 99"):
        load_model_file(future)


def test_init_from_starts_from_a_model_files_weights(tiny_config, tmp_path):
    pretrained = train(tiny_config)
    first = load_model_file(pretrained)["state_dict"]
    tiny_config.train.init_from = str(pretrained)
    tiny_config.train.exp_dir = str(tmp_path / "finetuned")
    tiny_config.train.lr = 0.0  # no update: the result must be the loaded weights
    second = load_model_file(train(tiny_config))["state_dict"]
    weights = [k for k in first if not k.startswith("normalize.")]
    assert weights and all(torch.equal(first[k], second[k]) for k in weights)

    tiny_config.train.exp_dir = str(tmp_path / "other_shape")
    tiny_config.model.hidden_size += 8
    with pytest.raises(ValueError, match="init_from does not fit this run's model config"):
        train(tiny_config)


def _corpus_seconds(exp_dir):
    """{epoch: {corpus: seconds}} from train_log.csv's corpus_audio_seconds."""
    totals = {}
    with open(exp_dir / "train_log.csv", newline="") as f:
        for row in csv.DictReader(f):
            epoch = totals.setdefault(int(row["epoch"]), {})
            for item in row["corpus_audio_seconds"].split():
                name, seconds = item.split("=")
                epoch[name] = epoch.get(name, 0.0) + float(seconds)
    return totals


def test_two_weighted_corpora_share_each_epoch_as_asked_and_resume_exactly(two_corpora_config, tmp_path, caplog):
    config = two_corpora_config
    config.train.epochs, config.train.device = 2, "cpu"
    whole = dataclasses.replace(config, train=dataclasses.replace(config.train, exp_dir=str(tmp_path / "whole")))
    drawn = []
    with caplog.at_level("INFO", logger="asr.train"):
        train(whole, observer=lambda progress, indices, model: drawn.extend(indices))
    assert "epoch 1 draws: few" in caplog.text
    for epoch, seconds in _corpus_seconds(tmp_path / "whole").items():
        assert seconds["few"] == pytest.approx(seconds["many"], abs=4.0), (epoch, seconds)  # within an utterance
    assert max(drawn) >= 48 and len(drawn) > len(set(drawn))  # few's utterances drawn again, as new draws
    reference = _losses(tmp_path / "whole")

    split = dataclasses.replace(
        config, train=dataclasses.replace(config.train, exp_dir=str(tmp_path / "split"), max_steps=3)
    )
    train(split)
    split.train.max_steps = 0
    train(split)
    resumed = _losses(tmp_path / "split")
    assert sorted(resumed) == sorted(reference)
    for step in reference:
        assert resumed[step] == pytest.approx(reference[step], rel=1e-4, abs=1e-4), f"step {step}"
    assert _corpus_seconds(tmp_path / "split") == _corpus_seconds(tmp_path / "whole")  # the same draws


def _band_limited(samples, rate=16000, cutoff_rate=11025):
    """``samples`` with nothing above ``cutoff_rate / 2`` (5.5 kHz), like LibriSpeech's MP3s."""
    down = soxr.resample(samples, rate, cutoff_rate, quality="HQ")
    return soxr.resample(down, cutoff_rate, rate, quality="HQ")[: len(samples)]


def test_a_model_trained_on_band_limited_audio_hears_full_band_audio_as_band_limited(tiny_config, tmp_path):
    records = [json.loads(line) for line in open(tiny_config.data.train_manifest)]
    folder = Path(tiny_config.data.train_manifest).parent
    (tmp_path / "wavs").mkdir()
    for i, record in enumerate(records):
        samples, rate = sf.read(folder / record["audio_filepath"], dtype="float32")
        # float samples, like a decoded MP3: no quantisation noise above the cut
        path = write_wav(tmp_path / "wavs" / f"{i}.wav", _band_limited(samples), rate, subtype="FLOAT")
        record["audio_filepath"] = str(path)
    (tmp_path / "limited.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    tiny_config.data.train_manifest, tiny_config.train.epochs = str(tmp_path / "limited.jsonl"), 3
    model = load_model(train(tiny_config), device="cpu")
    empty = model.model.normalize.empty_bins()
    centres = librosa.mel_frequencies(tiny_config.features.n_mels + 2, fmax=8000)[1:-1]
    assert empty and min(centres[empty]) > 5500 and max(centres[empty]) == centres[-1]
    dev = [folder / json.loads(line)["audio_filepath"] for line in open(tiny_config.data.dev_manifest)]
    for path in dev:
        full = torch.from_numpy(sf.read(path, dtype="float32")[0])[None]
        limited = torch.from_numpy(_band_limited(full[0].numpy()))[None]
        counts = torch.tensor([full.shape[1]])
        difference = (model.log_probs(full, counts)[0] - model.log_probs(limited, counts)[0]).abs().mean()
        # Measured 0.0005-0.0019; 0.04-0.07 when the empty bins are not ignored (EMPTY_BIN_MARGIN
        # -1): full-band energy then sits hundreds of deviations from anything heard in training
        assert difference < 0.01, (path.name, difference)
    # the ignored bins' infinite deviations survive export: ONNX Runtime gives the same log-probs
    onnx = load_model(model.export(tmp_path / "model.onnx", "onnx"))
    got, expected = onnx.log_probs(full, counts)[0], model.log_probs(full, counts)[0]
    assert (got - expected).abs().max() < 1e-4


def test_the_learning_rate_warms_up_linearly_then_decays_along_a_cosine_to_its_floor():
    from asr.train import lr_factor

    warmup, total, floor = 10, 110, 0.05
    factors = [lr_factor(step, warmup, total, floor) for step in range(total + 20)]
    assert factors[:warmup] == pytest.approx([(step + 1) / warmup for step in range(warmup)])
    assert factors[warmup] == pytest.approx(1.0)
    assert factors[warmup + 50] == pytest.approx((1 + floor) / 2)  # half way down the cosine
    assert all(a >= b for a, b in zip(factors[warmup:], factors[warmup + 1 :]))
    assert factors[total:] == pytest.approx([floor] * 20)  # and it stays there past the planned steps


def test_the_vocabulary_from_training_data_adds_the_characters_the_transcripts_need(tiny_config, tmp_path):
    lines = Path(tiny_config.data.train_manifest).read_text().splitlines()
    first = json.loads(lines[0])
    first["text"] = first["text"].replace(first["text"].split()[0], "1", 1)  # a transcript written with a digit
    manifest = Path(tiny_config.data.train_manifest).parent / "with_digit.jsonl"  # beside: relative audio paths
    manifest.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    tiny_config.data.train_manifest = str(manifest)
    with pytest.raises(ValueError, match="with_digit.jsonl.*'1' x1"):
        train(tiny_config)  # the default characters have no digits

    tiny_config.data.vocabulary = "from_training_data"
    data = load_model_file(train(tiny_config))
    assert data["vocabulary"] == Vocabulary().characters + ["1"]
    assert data["state_dict"]["output.weight"].shape[0] == len(Vocabulary()) + 1  # the output layer has it too
    assert load_model(Path(tiny_config.train.exp_dir) / "model.pt", device="cpu").vocabulary.characters[-1] == "1"


def test_model_pt_is_the_average_of_the_last_epochs_only_when_that_is_no_worse_on_dev(trained_digits_model, tmp_path):
    """A finished run resumed with ``train.average_last=2`` writes model.pt again. The average of an
    untrained and a trained epoch model is far worse on dev than the best epoch: model.pt is best.pt.
    Two copies of the best epoch average to themselves: model.pt is their average."""
    exp = tmp_path / "exp"
    shutil.copytree(Path(trained_digits_model).parent, exp)
    best = load_model_file(exp / "best.pt")
    config = config_from_dict(best["config"])
    config.train.exp_dir, config.train.average_last = str(exp), 2
    untrained = model_payload(
        CTCModel(config.features.n_mels, len(Vocabulary(best["vocabulary"])), config.model),
        best["config"],
        best["vocabulary"],
    )
    torch.save(untrained, exp / f"epoch-{config.train.epochs - 1}.pt")
    shutil.copy(exp / "best.pt", exp / f"epoch-{config.train.epochs}.pt")
    (exp / "model.pt").unlink()
    assert train(config).read_bytes() == (exp / "best.pt").read_bytes()

    shutil.copy(exp / "best.pt", exp / f"epoch-{config.train.epochs - 1}.pt")
    averaged = load_model_file(train(config))
    assert averaged["averaged_from"] == [f"epoch-{config.train.epochs - 1}.pt", f"epoch-{config.train.epochs}.pt"]
    assert averaged["dev_cer"] == pytest.approx(best["dev_cer"])
    assert all(torch.equal(averaged["state_dict"][k], v) for k, v in best["state_dict"].items())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed precision trains on CUDA only")
@pytest.mark.parametrize("amp_dtype", ["fp16", "bf16"])
def test_mixed_precision_on_a_gpu_trains_finite_weights_and_loss_scaling_only_for_fp16(tiny_config, amp_dtype):
    if amp_dtype == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    tiny_config.train.device, tiny_config.train.amp_dtype, tiny_config.train.epochs = "cuda", amp_dtype, 2
    model_path = train(tiny_config)
    weights = load_model_file(model_path)["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())
    scaler = load_checkpoint(model_path.parent / "checkpoint.pt")["scaler"]
    assert bool(scaler) == (amp_dtype == "fp16")  # GradScaler's state: empty when it is disabled
    losses = _losses(model_path.parent)
    assert losses and all(torch.isfinite(torch.tensor(loss)) for loss in losses.values())
