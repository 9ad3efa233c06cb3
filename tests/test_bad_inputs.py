"""Hostile and careless inputs: each gets a clear one-line error naming the file, and nothing leaks."""

import dataclasses
import json
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.checkpoint import atomic_save, model_payload
from asr.config import Config, config_to_dict
from asr.model import CTCModel
from asr.recognizer import Recognizer
from asr.text import Vocabulary

from .conftest import run_cli, write_wav

SECRET = "root:SECRET-FIRST-LINE:0:0"


@pytest.fixture(scope="module")
def untrained_model_config() -> Config:
    config = Config()
    config.model.num_layers, config.model.hidden_size, config.model.conv_channels = 1, 16, 4
    return config


def save_untrained_model(config: Config, path: Path) -> Path:
    torch.manual_seed(0)
    vocabulary = Vocabulary()
    model = CTCModel(config.features.n_mels, len(vocabulary), config.model, config.features.utterance_mean_norm)
    Recognizer(config, vocabulary, model, torch.device("cpu")).save(path)
    return path


@pytest.mark.parametrize("field", ["lm", "lexicon"])
def test_a_model_file_naming_a_file_that_is_no_lm_gets_an_error_that_does_not_show_its_contents(
    untrained_model_config, tmp_path, field
):
    secret = tmp_path / "passwd"
    secret.write_text(SECRET + "\nsecond line\n")
    lm = tmp_path / "lm.arpa"
    lm.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\t<s>\t0\n-1.0\t</s>\n-0.5\tone\n\n\\end\\\n")
    decoding = {"lm": str(lm), "lexicon": "", field: str(secret)}
    config = dataclasses.replace(
        untrained_model_config, decoding=dataclasses.replace(untrained_model_config.decoding, method="beam", **decoding)
    )
    with pytest.raises(ValueError, match=str(secret)):  # our own save refuses to carry it
        save_untrained_model(config, tmp_path / "refused.pt")
    assert not (tmp_path / "refused.pt").exists()
    model = tmp_path / "crafted.pt"  # as someone else's tool would write it: naming the file
    torch.manual_seed(0)
    network = CTCModel(config.features.n_mels, len(Vocabulary()), config.model, config.features.utterance_mean_norm)
    atomic_save(model_payload(network, config_to_dict(config), Vocabulary().characters), model)
    audio = write_wav(tmp_path / "a.wav", (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32))
    result = run_cli("transcribe", str(model), str(audio))
    assert result.returncode != 0
    assert "SECRET" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert str(secret) in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("kind", ["directory", "fifo", "missing"])
def test_an_lm_path_that_is_no_regular_file_is_refused(untrained_model_config, tmp_path, kind):
    from asr.decoding import BeamSearchDecoder

    path = tmp_path / kind
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        import os

        os.mkfifo(path)  # opening it to read would block forever
    with pytest.raises((ValueError, FileNotFoundError), match=str(path)):
        BeamSearchDecoder(Vocabulary(), lm=str(path))


def wav_header_claiming(path: Path, sample_rate: int, frames: int = 10000) -> Path:
    """A real 16-bit WAV of ``frames`` samples whose header says ``sample_rate``."""
    import soundfile as sf

    sf.write(path, np.zeros(frames, np.int16), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28] = sample_rate.to_bytes(4, "little")  # fmt chunk: sample rate, then byte rate
    data[28:32] = (2 * sample_rate).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("rate", [1, 999, 400_000])
def test_a_header_sample_rate_no_recording_has_is_refused_before_resampling(tmp_path, rate):
    from asr.audio import AudioError, load_audio

    path = wav_header_claiming(tmp_path / f"rate{rate}.wav", rate)
    with pytest.raises(AudioError, match=rf"rate{rate}\.wav: sample rate {rate} Hz is outside 1000-384000 Hz"):
        load_audio(path, 16000)


def test_audio_longer_than_the_maximum_is_refused_before_it_is_decoded(tmp_path):
    from asr.audio import AudioError, load_audio, prepare_samples

    path = wav_header_claiming(tmp_path / "long.wav", 8000, frames=8000 * 30)
    assert len(load_audio(path, 16000, max_seconds=31)) == 16000 * 30
    with pytest.raises(AudioError, match=r"long\.wav: 0\.0 h of audio is longer than the 0\.0 h allowed"):
        load_audio(path, 16000, max_seconds=29)
    with pytest.raises(AudioError, match="longer than"):
        prepare_samples(np.zeros(16000 * 30, np.float32), 16000, max_seconds=29)


def test_arrays_in_either_channel_layout_and_integer_arrays_give_the_same_samples():
    from asr.audio import prepare_samples

    rng = np.random.default_rng(0)
    left, right = (0.5 * rng.uniform(-1, 1, (2, 16000))).astype(np.float32)
    mono = (left + right) / 2
    np.testing.assert_allclose(prepare_samples(np.stack([left, right]), 16000), mono, atol=1e-7)  # (channels, samples)
    np.testing.assert_allclose(
        prepare_samples(np.stack([left, right], axis=1), 16000), mono, atol=1e-7
    )  # soundfile's (samples, channels)
    as_int16 = np.round(left * 32768).astype(np.int16)
    np.testing.assert_allclose(prepare_samples(as_int16, 16000), left, atol=1 / 32768)
    as_uint8 = np.round(left * 128 + 128).astype(np.uint8)
    np.testing.assert_allclose(prepare_samples(as_uint8, 16000), left, atol=1 / 128)
    as_int32 = np.round(left * 2**31).astype(np.int32)
    np.testing.assert_allclose(prepare_samples(as_int32, 16000), left, atol=1e-6)


@pytest.mark.parametrize("rate", [0, -16000, 16000.5])
def test_an_array_with_a_rate_no_recording_has_is_refused_by_the_api(untrained_model_config, tmp_path, rate):
    import asr
    from asr.audio import AudioError

    model = asr.load_model(save_untrained_model(untrained_model_config, tmp_path / "m.pt"), device="cpu")
    with pytest.raises(AudioError, match=r"<array 0>: sample rate .* Hz is outside"):
        model.transcribe(np.zeros(16000, np.float32), sample_rate=rate)


def test_errors_report_goes_on_past_an_input_that_is_not_audio(untrained_model_config, tmp_path):
    import asr

    model = asr.load_model(save_untrained_model(untrained_model_config, tmp_path / "m.pt"), device="cpu")
    results = model.transcribe([np.zeros(16000, np.float32), 42, np.zeros(8000, np.float32)], errors="report")
    assert [r.error is None for r in results] == [True, False, True]
    assert "input 1: expected a path, a numpy array or a torch tensor, got int" in results[1].error


@pytest.mark.parametrize("value", ["-1", "0"])
def test_a_batch_size_below_one_is_refused_by_the_cli_and_the_api(untrained_model_config, tmp_path, value):
    import asr

    model_path = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    audio = write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    result = run_cli("transcribe", str(model_path), str(audio), "--batch-size", value)
    assert result.returncode == 2 and f"--batch-size: {value} is less than 1" in result.stderr and result.stdout == ""
    with pytest.raises(ValueError, match="batch_size must be a whole number of at least 1"):
        asr.load_model(model_path, device="cpu").transcribe(str(audio), batch_size=int(value))


@pytest.mark.parametrize("samples", [1, 100, 256, 400])
def test_very_short_audio_gives_an_empty_or_short_transcript_and_does_not_touch_its_batch(
    untrained_model_config, tmp_path, samples
):
    import asr

    model = asr.load_model(save_untrained_model(untrained_model_config, tmp_path / "m.pt"), device="cpu")
    rng = np.random.default_rng(samples)
    short = write_wav(tmp_path / "short.wav", (0.1 * rng.standard_normal(samples)).astype(np.float32))
    long = write_wav(tmp_path / "long.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32))
    together = model.transcribe([str(short), str(long)], batch_size=4)
    assert [r.error for r in together] == [None, None]  # before: "Padding size should be less than ..." for the batch
    assert together[1].duration == pytest.approx(1.0)
    only_short = model.transcribe(str(short), batch_size=1)
    assert only_short.error is None and only_short.duration == pytest.approx(samples / 16000, abs=1e-4)


def truncated_copies(tmp_path: Path) -> dict[str, Path]:
    """Half of a 2-second WAV and of a 2-second MP3 (its Xing header still gives the full length)."""
    import soundfile as sf

    tone = (0.1 * np.sin(np.arange(32000) / 5)).astype(np.float32)
    paths = {}
    for suffix, kwargs in (("wav", {"subtype": "PCM_16"}), ("mp3", {"format": "MP3"})):
        whole = tmp_path / f"whole.{suffix}"
        sf.write(whole, tone, 16000, **kwargs)
        paths[suffix] = tmp_path / f"truncated.{suffix}"
        data = whole.read_bytes()
        paths[suffix].write_bytes(data[: len(data) // 2])
        paths[f"whole {suffix}"] = whole
    return paths


@pytest.mark.parametrize("suffix", ["wav", "mp3"])
def test_a_truncated_file_is_reported_unless_truncation_is_allowed(tmp_path, suffix):
    from asr.audio import AudioError, load_audio

    paths = truncated_copies(tmp_path)
    assert abs(len(load_audio(paths[f"whole {suffix}"])) - 32000) < 1200  # whole files are not reported
    with pytest.raises(AudioError, match=rf"truncated\.{suffix}: truncated audio: the header promises"):
        load_audio(paths[suffix])
    kept = load_audio(paths[suffix], allow_truncated=True)
    assert 8000 < len(kept) < 24000


def test_the_cli_reports_a_truncated_file_and_transcribes_the_rest_or_all_with_allow_truncated(
    untrained_model_config, tmp_path
):
    paths = truncated_copies(tmp_path)
    model = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    files = [str(paths["whole wav"]), str(paths["wav"]), str(paths["mp3"])]
    strict = run_cli("transcribe", str(model), *files)
    assert strict.returncode == 1, strict.stderr
    errors = [line for line in strict.stderr.splitlines() if line.startswith("asr: error:")]
    assert (
        len(errors) == 2
        and "truncated.wav: truncated audio" in errors[0]
        and "truncated.mp3: truncated audio" in errors[1]
    )
    assert strict.stdout.startswith(files[0] + "\t") and len(strict.stdout.splitlines()) == 1
    allowed = run_cli("transcribe", str(model), *files, "--allow-truncated")
    assert allowed.returncode == 0, allowed.stderr
    assert [line.split("\t")[0] for line in allowed.stdout.splitlines()] == files


BAD_TRAINING_VALUES = [
    "train.epochs=0",
    "train.epochs=-3",
    "train.max_steps=-1",
    "train.checkpoint_every=0",
    "train.checkpoint_every=-5",
    "train.grad_clip=-1.0",
    "model.hidden_size=-8",
    "features.n_mels=0",
    "model.rnn_type=transformer",
    "model.time_subsampling=3",
    "train.amp_dtype=fp8",
    "decoding.method=sampling",
    "data.max_batch_seconds=0",
    "model.dropout=1.5",
    "decoding.chunk_seconds=2",
    "train.device=tpu",
    "data.reverb_probability=2",
    "data.reverb_rt60=[0.8,0.2]",
    "train.lr=.inf",
    "train.lr=.nan",
    "train.weight_decay=.inf",
    "data.noise_snr_db=[5, .inf]",
    "features.hop_ms=0.001",
    "features.n_fft=10000000",
    "decoding.chunk_seconds=1e9",
    "decoding.chunk_seconds=.inf",
    "decoding.beam_threshold=-1",
    "decoding.beam_threshold=.nan",
    "decoding.lm_weight=.nan",
    "decoding.word_score=-.inf",
    "decoding.beam_size=-1",
]


@pytest.mark.parametrize("override", BAD_TRAINING_VALUES)
def test_a_config_value_no_run_can_use_is_refused_at_load_with_the_file_and_key_named(tmp_path, override):
    from asr.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("train:\n  epochs: 2\n")
    key = override.split("=")[0]
    with pytest.raises(ValueError, match=rf"^{path}: {re.escape(key)} must be "):
        load_config(path, [override])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- train\n- model\n", "a config is a mapping of sections"),
        ("42\n", "a config is a mapping of sections"),
        ("", "empty config file"),
        ("train: [1, 2]\n", "section 'train' must be a mapping"),
        ("train:\n  epochs: 2\n lr: 3\n", "line 3 not valid YAML"),
        ("model:\n  hidden_size: big\n", "model.hidden_size: expected int"),
    ],
)
def test_a_config_file_that_is_not_a_config_gets_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    result = run_cli("train", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip()]
        and str(path) in result.stderr
        and message in result.stderr
    ), result.stderr


def test_training_refuses_a_run_that_would_write_an_untrained_model(tmp_path):
    from asr.config import Config
    from asr.train import train

    manifest = tmp_path / "train.jsonl"
    audio = write_wav(tmp_path / "a.wav", np.zeros(32000, np.float32))
    manifest.write_text(f'{{"audio_filepath": "{audio}", "duration": 2.0, "text": "one"}}\n')
    config = Config()
    config.data.train_manifest = str(manifest)
    config.data.max_duration = 1.0
    config.train.exp_dir = str(tmp_path / "exp")
    with pytest.raises(
        ValueError, match=r"train\.jsonl: no training utterance is at most data\.max_duration \(1\.0 s\) long"
    ):
        train(config)
    config.data.max_duration = 30.0
    (tmp_path / "file").write_text("")
    config.train.exp_dir = str(tmp_path / "file")
    with pytest.raises(ValueError, match="train.exp_dir: .*file is a file, not a folder"):
        train(config)
    config.train.exp_dir = str(tmp_path / "exp")
    config.train.epochs = 0  # the API path is checked too, not only YAML
    with pytest.raises(ValueError, match=r"train\.epochs must be 1 or more, not 0"):
        train(config)
    if not torch.cuda.is_available():
        config.train.epochs, config.train.device = 1, "cuda"
        with pytest.raises(ValueError, match="train.device is 'cuda' but no CUDA GPU is available"):
            train(config)
    assert not (tmp_path / "exp" / "model.pt").exists()


def payload_of(path: Path) -> dict:
    return torch.load(path, weights_only=True)


MODEL_FILE_DAMAGE = {
    "no config": (lambda d: d.pop("config"), "config must be a dict, but it is missing"),
    "no state_dict": (lambda d: d.pop("state_dict"), "state_dict must be a dict, but it is missing"),
    "string vocabulary": (lambda d: d.update(vocabulary="abc"), "vocabulary must be a list, but it is a str"),
    "wrong shapes": (
        lambda d: d["state_dict"].update({"output.weight": torch.zeros(3, 3)}),
        "its weights do not fit its config",
    ),
    "bad config value": (lambda d: d["config"]["model"].update(hidden_size=-4), "model.hidden_size must be 1 or more"),
}


@pytest.mark.parametrize("damage", sorted(MODEL_FILE_DAMAGE))
def test_a_damaged_model_file_gets_a_one_line_error_naming_it(untrained_model_config, tmp_path, damage):
    change, message = MODEL_FILE_DAMAGE[damage]
    path = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    data = payload_of(path)
    change(data)
    torch.save(data, path)
    audio = write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    result = run_cli("transcribe", str(path), str(audio))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and str(path) in result.stderr and message in result.stderr, (
        result.stderr
    )


class _Runs:  # pickled by reference: loading it with weights_only=False would import and call it
    def __reduce__(self):
        return (print, ("this ran",))


class _RunsShell:  # os.system: torch names its module as blocked, in other words than print's
    def __reduce__(self):
        return (os.system, ("echo this ran",))


@pytest.mark.parametrize("kind", ["directory", "symlink loop", "fifo", "pickle with code", "pickle with os.system"])
def test_what_is_not_a_model_file_gets_a_one_line_error(tmp_path, kind):
    import os

    path = tmp_path / "model.pt"
    expected = {
        "directory": "is a folder, not a model file",
        "symlink loop": "no such file",
        "fifo": "not a regular file",
        "pickle with code": "not a safe model file",
        "pickle with os.system": "other than tensors and plain values (posix.system), which could run code",
    }[kind]
    if kind == "directory":
        path.mkdir()
    elif kind == "symlink loop":
        os.symlink(tmp_path / "other.pt", path)
        os.symlink(path, tmp_path / "other.pt")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        torch.save({"format": "asr-model", "payload": _Runs() if kind == "pickle with code" else _RunsShell()}, path)
    audio = write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    result = run_cli("transcribe", str(path), str(audio))
    assert result.returncode == 2 and expected in result.stderr and str(path) in result.stderr, result.stderr
    assert (
        len(result.stderr.strip().splitlines()) == 1
        and "weights_only" not in result.stderr
        and "this ran" not in result.stdout
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            b'{"audio_filepath": 42, "duration": 1.0, "text": "one"}\n',
            "audio_filepath must be a path (a non-empty string), not 42",
        ),
        (
            b'{"audio_filepath": null, "duration": 1.0, "text": "one"}\n',
            "audio_filepath must be a path (a non-empty string), not None",
        ),
        (b'{"audio_filepath": "a.wav", "duration": 1.0, "text": "caf\xe9"}\n', "not UTF-8 text"),
    ],
)
def test_a_bad_manifest_line_is_named_by_file_and_line(untrained_model_config, tmp_path, line, message):
    write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    manifest = tmp_path / "test.jsonl"
    manifest.write_bytes(b'{"audio_filepath": "a.wav", "duration": 1.0, "text": "one"}\n' + line)
    model = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    result = run_cli("evaluate", str(model), str(manifest))
    assert result.returncode == 2 and f"{manifest}:2: {message}" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_corrupt_audio_stops_evaluation_with_one_line_and_is_skipped_in_training_with_skip_bad(
    untrained_model_config, tmp_path
):
    from asr.config import config_to_dict
    import yaml

    rng = np.random.default_rng(0)
    lines = []
    for i in range(6):
        write_wav(tmp_path / f"{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32))
        lines.append(f'{{"audio_filepath": "{i}.wav", "duration": 1.0, "text": "one two"}}')
    (tmp_path / "3.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")  # the header of nothing
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    model = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    evaluated = run_cli("evaluate", str(model), str(manifest))
    assert evaluated.returncode == 2 and "Traceback" not in evaluated.stderr, evaluated.stderr
    (message,) = [line for line in evaluated.stderr.splitlines() if line.startswith("asr:")]  # beside tqdm's bar
    assert message.startswith(f"asr: error: {tmp_path / '3.wav'}: not a readable audio file"), message

    values = config_to_dict(untrained_model_config)
    values["data"].update(
        train_manifest=str(manifest), dev_manifest="", skip_bad=True, num_workers=0, max_batch_seconds=3.0
    )
    values["train"].update(exp_dir=str(tmp_path / "exp"), epochs=1)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(values))
    trained = run_cli("train", str(config_path))
    assert trained.returncode == 0, trained.stderr
    assert f"skipping {tmp_path / '3.wav'}" in trained.stderr
    import csv

    rows = list(csv.DictReader(open(tmp_path / "exp" / "train_log.csv")))
    assert sum(int(r["utterances"]) for r in rows) == 5  # every readable utterance once, the bad one left out
    values["data"]["skip_bad"] = False
    values["train"]["exp_dir"] = str(tmp_path / "exp2")
    config_path.write_text(yaml.safe_dump(values))
    strict = run_cli("train", str(config_path))
    assert (
        strict.returncode == 2
        and "3.wav: not a readable audio file" in strict.stderr
        and "Traceback" not in strict.stderr
    ), strict.stderr


def test_a_rerun_removes_what_a_killed_write_left_and_files_get_the_umask(untrained_model_config, tmp_path):
    import os
    import stat

    from asr.checkpoint import atomic_save, remove_stale_temporaries

    exp = tmp_path / "exp"
    exp.mkdir()
    stale = [exp / ".best.pt.x_9.tmp", exp / ".checkpoint.pt.abc123.tmp", exp / ".model.pt.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    (exp / "notes.tmp").write_text("not ours")
    assert remove_stale_temporaries(exp) == sorted(stale)
    assert sorted(p.name for p in exp.iterdir()) == ["notes.tmp"]
    previous = os.umask(0o022)
    try:
        atomic_save({"a": 1}, exp / "model.pt")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((exp / "model.pt").stat().st_mode) == 0o644


def test_a_fifo_given_as_audio_is_refused_without_reading_it(tmp_path):
    import os

    from asr.audio import AudioError, load_audio

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # opening it to read would wait for a writer forever
    with pytest.raises(AudioError, match=r"pipe\.wav: not a regular file"):
        load_audio(fifo)


def _wav_header(rate: int, data_bytes: int, channels: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
    return b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", data_bytes)


def _tone(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def _with_sample(value: float):
    def make(path: Path) -> None:
        samples = _tone()
        samples[100] = value
        sf.write(path, samples, 16000, subtype="FLOAT")

    return make


def _cut_in_half(fmt: str):
    def make(path: Path) -> None:
        whole = path.with_suffix("." + fmt.lower())
        sf.write(whole, np.tile(_tone(), 5), 16000, format=fmt)
        data = whole.read_bytes()
        whole.unlink()
        path.write_bytes(data[: len(data) // 2])

    return make


def _link_loop(path: Path) -> None:
    os.symlink(path.parent / "other.wav", path)
    os.symlink(path, path.parent / "other.wav")


# kind of bad audio -> (how to make it at PATH, what the one error line says after "PATH: ")
BAD_AUDIO = {
    "missing": (lambda p: None, "no such file"),
    "empty": (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    "text": (lambda p: p.write_text("this is not audio\n"), "not a readable audio file (Format not recognised."),
    "random bytes": (
        lambda p: p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()),
        "not a readable audio file",
    ),
    "zip": (lambda p: p.write_bytes(b"PK\x03\x04" + bytes(200)), "not a readable audio file"),
    "png": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300)), "not a readable audio file"),
    "zero channels": (lambda p: p.write_bytes(_wav_header(16000, 2000, channels=0) + bytes(2000)), "Channel count"),
    "header only": (lambda p: p.write_bytes(_wav_header(16000, 0)), "zero-length audio"),
    "truncated wav": (lambda p: p.write_bytes(_wav_header(16000, 64000) + bytes(1000)), "truncated audio"),
    "truncated flac": (_cut_in_half("FLAC"), "truncated or corrupt audio"),
    "truncated mp3": (_cut_in_half("MP3"), "truncated audio"),
    "rate 1 Hz": (lambda p: p.write_bytes(_wav_header(1, 2000) + bytes(2000)), "sample rate 1 Hz is outside"),
    "rate 500 kHz": (lambda p: p.write_bytes(_wav_header(500_000, 2000) + bytes(2000)), "is outside 1000-384000 Hz"),
    "nan": (_with_sample(np.nan), "NaN or infinite samples"),
    "inf": (_with_sample(np.inf), "NaN or infinite samples"),
    "fifo": (lambda p: os.mkfifo(p), "not a regular file"),
    "dangling link": (lambda p: os.symlink(p.parent / "nowhere.wav", p), "no such file"),
    "link loop": (_link_loop, "no such file"),
    "empty folder": (lambda p: p.mkdir(), "no audio files in this folder"),
}


@pytest.mark.parametrize("kind", sorted(BAD_AUDIO))
def test_the_cli_fails_a_bad_file_alone_with_one_line_naming_it_and_transcribes_the_rest(
    untrained_model_config, tmp_path, kind, capsys
):
    from asr.cli import main

    make, message = BAD_AUDIO[kind]
    model = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    good = [write_wav(tmp_path / f"good_{n}.wav", _tone()) for n in "ab"]
    (tmp_path / "bad").mkdir()
    bad = tmp_path / "bad" / "input.wav"
    make(bad)
    code = main(["transcribe", str(model), str(good[0]), str(bad), str(good[1]), "--device", "cpu"])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("asr: ")]
    assert code == 1 and "Traceback" not in captured.err
    assert errors == [f"asr: error: {bad}: {errors[0].split(': ', 3)[3]}", "asr: 2 transcribed, 1 failed"], errors
    assert message in errors[0], errors[0]
    assert [line.split("\t")[0] for line in captured.out.splitlines()] == [str(good[0]), str(good[1])]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--beam-threshold", "-1"], "--beam-threshold: -1 is not a positive finite number"),
        (["--beam-threshold", "nan"], "--beam-threshold: nan is not a positive finite number"),
        (["--lm-weight", "nan"], "--lm-weight: nan is not a finite number"),
        (["--word-score", "inf"], "--word-score: inf is not a finite number"),
    ],
)
def test_a_decoding_flag_no_decoding_can_use_is_refused_before_any_audio_is_read(
    untrained_model_config, tmp_path, flags, message
):
    model_path = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    audio = write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    result = run_cli("transcribe", str(model_path), str(audio), *flags)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == f"asr transcribe: error: argument {message}"  # after the usage


def test_the_api_refuses_decoding_values_from_replace_keywords_and_model_files(untrained_model_config, tmp_path):
    import dataclasses

    import asr
    from asr.checkpoint import ModelFileError, atomic_save, load_model_file

    model_path = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    model = asr.load_model(model_path, device="cpu")
    for change, message in [
        ({"beam_threshold": float("nan")}, "decoding.beam_threshold must be positive, not nan"),
        ({"lm_weight": float("inf")}, "decoding.lm_weight must be a finite number, not inf"),
        ({"beam_size": "many"}, "decoding.beam_size must be a whole number, 1 or more, not 'many'"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            dataclasses.replace(model.config.decoding, **change)
        with pytest.raises(ValueError, match=re.escape(message)):
            model.transcribe(np.zeros(16000, np.float32), **change)
    data = load_model_file(model_path)
    data["config"]["decoding"]["word_score"] = float("nan")
    atomic_save(data, tmp_path / "nan.pt")
    with pytest.raises(ModelFileError, match=r"nan.pt: its stored config cannot build a model \(decoding.word_score"):
        asr.load_model(tmp_path / "nan.pt")


def test_tune_lm_refuses_a_weight_grid_with_nan(untrained_model_config, tmp_path):
    model_path = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    result = run_cli("tune-lm", str(model_path), "dev.jsonl", "--lm", "lm.arpa", "--lm-weights", "1,nan")
    assert result.returncode == 2 and "--lm-weights: '1,nan': every value must be a finite number" in result.stderr


def test_a_training_whose_weights_stop_being_finite_stops_and_writes_no_model(tiny_config):
    from asr.train import TrainingDiverged, train

    tiny_config.train.lr, tiny_config.train.warmup_steps = 1e30, 0  # finite, but Adam's steps overflow
    with pytest.raises(TrainingDiverged, match=r"training diverged at step \d+ .*no model written"):
        train(tiny_config)
    assert not (Path(tiny_config.train.exp_dir) / "model.pt").exists()


def test_evaluate_skip_bad_leaves_out_unreadable_audio_and_scores_the_rest(untrained_model_config, tmp_path):
    model_path = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    write_wav(tmp_path / "b.wav", np.zeros(8000, np.float32))
    (tmp_path / "empty.wav").write_bytes(b"")
    manifest = tmp_path / "m.jsonl"
    rows = [{"audio_filepath": f, "duration": 1.0, "text": "one"} for f in ("a.wav", "empty.wav", "b.wav")]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "decode.jsonl"
    strict = run_cli("evaluate", str(model_path), str(manifest), "--output", str(output))
    assert strict.returncode == 2 and strict.stderr.strip().splitlines()[-1].endswith("empty.wav: empty file (0 bytes)")
    skipped = run_cli("evaluate", str(model_path), str(manifest), "--output", str(output), "--skip-bad")
    assert skipped.returncode == 0, skipped.stderr
    assert "1 of 3 utterances left out: their audio could not be read" in skipped.stderr
    assert "(2 utterances)" in skipped.stdout
    assert [json.loads(line)["audio_filepath"] for line in output.read_text().splitlines()] == [
        str(tmp_path / "a.wav"),
        str(tmp_path / "b.wav"),
    ]


def test_an_export_removes_what_a_killed_export_of_the_same_file_left(untrained_model_config, tmp_path):
    import asr

    model = asr.load_model(save_untrained_model(untrained_model_config, tmp_path / "m.pt"), device="cpu")
    left = tmp_path / ".model.onnx.k3x9q.tmp"  # as atomic_write names its temporary file
    left.write_bytes(b"")
    other = tmp_path / ".other.onnx.a1b2c.tmp"  # another file's: not this export's business
    other.write_bytes(b"")
    assert model.export(tmp_path / "model.onnx", "onnx") == tmp_path / "model.onnx"
    assert not left.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".other.onnx.a1b2c.tmp", "m.pt", "model.onnx"])


def test_text_inputs_no_regular_file_or_not_utf8_get_one_line_errors(untrained_model_config, tmp_path, capsys):
    from asr.cli import main

    model = save_untrained_model(untrained_model_config, tmp_path / "m.pt")
    audio = write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    os.mkfifo(tmp_path / "fifo")  # reading it would wait for a writer forever
    cases = [
        (["lm", "build", "/dev/zero", str(tmp_path / "o.arpa")], "/dev/zero: not a regular file"),
        (["lm", "build", "--counts", "/dev/zero,/dev/zero", str(tmp_path / "o.arpa")], "/dev/zero: not a regular file"),
        (["lm", "build", str(tmp_path / "latin1.txt"), str(tmp_path / "o.arpa")], "latin1.txt: not UTF-8 text"),
        (["align", str(model), str(audio), "/dev/zero"], "/dev/zero: not a regular file"),
        (["align", str(model), str(audio), str(tmp_path / "fifo")], "fifo: not a regular file"),
        (["align", str(model), str(audio), str(tmp_path)], f"{tmp_path}: not a regular file"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.endswith(f"{message}\n") and len(error.splitlines()) == 1, (argv, error)
    assert not (tmp_path / "o.arpa").exists()


def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(untrained_model_config, tmp_path, capsys):
    from asr.cli import main

    model = str(save_untrained_model(untrained_model_config, tmp_path / "m.pt"))
    write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "one"}) + "\n")
    (tmp_path / "text.txt").write_text("one two\n")
    folder, file = tmp_path / "folder", tmp_path / "file"
    folder.mkdir()
    file.write_text("x\n")
    text = str(tmp_path / "text.txt")
    cases = [
        (["export", model, str(folder)], f"{folder}: a folder, not a file"),
        (["export", model, str(file / "m.onnx")], f"{file / 'm.onnx'}: {file} is a file, not a folder"),
        (["export-model", model, str(folder)], f"{folder}: a folder, not a file"),
        (["evaluate", model, str(manifest), "--output", str(folder)], f"{folder}: a folder, not a file"),
        (["evaluate", model, str(manifest), "--report", str(folder)], f"{folder}: a folder, not a file"),
        (["tune-lm", model, str(manifest), "--lm", "x.arpa", "--out", str(folder)], f"{folder}: a folder, not a file"),
        (["lm", "build", text, str(folder)], f"{folder}: a folder, not a file"),
        (["lm", "build", text, "o.arpa", "--lexicon", str(folder)], f"{folder}: a folder, not a file"),
        (["transcribe", model, str(tmp_path / "a.wav"), "--output-dir", str(file)], f"{file}: a file, not a folder"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.endswith(f"asr: error: {message}\n") and error.count("\n") == 1, (argv, error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "file", "folder", "m.jsonl", "m.pt", "text.txt"]
    assert not any(folder.iterdir())


def test_export_model_refuses_a_decoding_override_no_decoding_can_use(untrained_model_config, tmp_path, capsys):
    from asr.cli import main

    model = str(save_untrained_model(untrained_model_config, tmp_path / "m.pt"))
    assert main(["export-model", model, str(tmp_path / "out.pt"), "decoding.beam_size=-1"]) == 2
    assert capsys.readouterr().err == "asr: error: decoding.beam_size must be a whole number, 1 or more, not -1\n"
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize(
    "metadata, problem",
    [
        ("[1, 2, 3]", "no config object"),
        ("42", "no config object"),
        ("[" * 100000 + "]" * 100000, "not JSON: RecursionError"),
        ('{"config": {}, "vocabulary": "abc"}', "no vocabulary list"),
        ("{not json", "not JSON: JSONDecodeError"),
    ],
    ids=["list", "number", "nested", "vocabulary", "garbage"],
)
def test_onnx_metadata_of_the_wrong_shape_gets_a_one_line_error(untrained_model_config, tmp_path, metadata, problem):
    import onnx

    import asr
    from asr.export import METADATA_KEY

    model = asr.load_model(save_untrained_model(untrained_model_config, tmp_path / "m.pt"), device="cpu")
    path = model.export(tmp_path / "model.onnx", "onnx")
    proto = onnx.load(str(path))
    next(entry for entry in proto.metadata_props if entry.key == METADATA_KEY).value = metadata
    onnx.save(proto, str(path))
    result = run_cli("transcribe", str(path), str(tmp_path / "any.wav"))
    assert (
        result.returncode == 2
        and result.stderr.strip() == f"asr: error: {path}: its asr metadata is damaged ({problem})"
    )
