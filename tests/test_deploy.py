"""Deployment: ONNX and TorchScript export (fp32 and int8), the backends that run them, streaming
transcription and `asr listen`, on the model trained for the tests and audio made here."""

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import asr
from asr.chunking import plan_regions
from asr.cli import main
from asr.config import DecodingConfig
from asr.digits import digit_string
from asr.metrics import error_rates
from asr.model import CTCModel
from asr.recognizer import Recognizer
from asr.vad import speech_stretches

from .conftest import speech, write_wav
from .test_transcribe import long_speech


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """The test model in every exported form, written once."""
    folder = tmp_path_factory.mktemp("exported")
    files = {
        "onnx": folder / "model.onnx",
        "onnx-int8": folder / "model_int8.onnx",
        "torchscript": folder / "model.ts",
        "torchscript-int8": folder / "model_int8.ts",
    }
    for name, path in files.items():
        assert model.export(path, name.split("-")[0], int8=name.endswith("int8")) == path
    return files


def batch_of(test_utterances, count=8):
    """The first ``count`` test utterances as one padded batch."""
    waveforms = [torch.from_numpy(asr.audio.load_audio(u.audio_filepath)) for u in test_utterances[:count]]
    counts = torch.tensor([len(w) for w in waveforms])
    return torch.nn.utils.rnn.pad_sequence(waveforms, batch_first=True), counts


@pytest.mark.parametrize("form", ["onnx", "torchscript"])
def test_an_exported_fp32_model_gives_the_torch_models_log_probs_and_words(model, exported, test_utterances, form):
    runner = asr.load_model(exported[form])
    assert runner.backend == {"onnx": "onnxruntime", "torchscript": "torchscript"}[form]
    assert runner.vocabulary == model.vocabulary and runner.config == model.config  # carried in the file
    waveforms, counts = batch_of(test_utterances)
    expected, expected_frames = model.log_probs(waveforms, counts)
    got, frames = runner.log_probs(waveforms, counts)
    assert torch.equal(frames.long(), expected_frames.long())
    for row, length in enumerate(expected_frames.tolist()):  # padding frames are not compared
        assert (got[row, :length] - expected[row, :length]).abs().max() < 1e-4
    paths = [u.audio_filepath for u in test_utterances]
    references = [u.text for u in test_utterances]
    torch_texts = [r.text for r in model.transcribe(paths)]
    texts = [r.text for r in runner.transcribe(paths)]
    assert texts == torch_texts  # the same words: WER difference 0.0
    assert error_rates(references, texts).wer == error_rates(references, torch_texts).wer


@pytest.fixture(scope="module")
def int8_check(model, test_utterances):
    """References and fp32 transcripts for the int8 checks: the test set and 150 s of read digit
    strings, about 670 words, so that half a point of WER is 3 words and not a near-tie's flip."""
    audio, text = long_speech(150)
    inputs = [u.audio_filepath for u in test_utterances] + [audio]
    references = [u.text for u in test_utterances] + [text]
    fp32 = error_rates(references, [r.text for r in model.transcribe(inputs)])
    assert fp32.reference_words > 600
    return inputs, references, fp32.wer


@pytest.mark.parametrize("form", ["onnx-int8", "torchscript-int8"])
def test_an_int8_model_is_within_half_a_point_of_wer_and_smaller(model, exported, test_utterances, int8_check, form):
    runner = asr.load_model(exported[form])
    inputs, references, fp32_wer = int8_check
    int8_wer = error_rates(references, [r.text for r in runner.transcribe(inputs)]).wer
    assert int8_wer <= fp32_wer + 0.005, (int8_wer, fp32_wer)
    fp32_file = exported[form.split("-")[0]]
    assert exported[form].stat().st_size < 0.6 * fp32_file.stat().st_size
    # int8 is not fp32 under another name: its log-probabilities differ a little
    waveforms, counts = batch_of(test_utterances, 2)
    assert not torch.allclose(runner.log_probs(waveforms, counts)[0], model.log_probs(waveforms, counts)[0], atol=1e-4)


def test_torch_int8_through_the_api_is_within_half_a_point(trained_digits_model, int8_check):
    int8 = asr.load_model(trained_digits_model, device="cpu", int8=True)
    assert int8.backend == "torch-int8"
    inputs, references, fp32_wer = int8_check
    assert error_rates(references, [r.text for r in int8.transcribe(inputs)]).wer <= fp32_wer + 0.005
    with pytest.raises(ValueError, match="cannot be saved"):
        int8.save("never.pt")


def test_the_onnx_file_runs_in_onnxruntime_alone_with_dynamic_batch_and_time(model, exported):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
    metadata = json.loads(session.get_modelmeta().custom_metadata_map["asr"])
    assert metadata["vocabulary"] == model.vocabulary.characters and metadata["int8"] is False
    for batch, samples in [(1, 8000), (3, 57000)]:
        log_probs, frames = session.run(
            None,
            {
                "waveforms": np.zeros((batch, samples), np.float32),
                "sample_counts": np.full(batch, samples, np.int64),
            },
        )
        assert log_probs.shape[0] == batch and log_probs.shape[2] == len(model.vocabulary)
        assert np.allclose(np.exp(log_probs).sum(-1), 1, atol=1e-4)
        assert int(frames[0]) == log_probs.shape[1]


def test_export_transcribe_and_evaluate_commands_with_a_backend(
    trained_digits_model, trained_digits_corpus, test_utterances, tmp_path, capsys
):
    out = tmp_path / "digits.onnx"
    assert main(["export", str(trained_digits_model), str(out), "--format", "onnx"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    path = str(test_utterances[0].audio_filepath)
    assert main(["transcribe", str(trained_digits_model), path, "--format", "json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert main(["transcribe", str(out), path, "--format", "json", "--backend", "onnxruntime"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got == expected and got["text"]
    manifest = str(trained_digits_corpus["test"])
    assert main(["evaluate", str(trained_digits_model), manifest, "--json", "--output", str(tmp_path / "a")]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(out), manifest, "--json", "--output", str(tmp_path / "b")]) == 0
    assert json.loads(capsys.readouterr().out) == expected


def test_files_that_are_not_exported_models_get_one_line_errors(trained_digits_model, tmp_path, capsys):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    import onnx

    bare = tmp_path / "bare.onnx"  # a valid ONNX graph without the vocabulary and config
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    value = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [node], "g", [value("x", onnx.TensorProto.FLOAT, [1])], [value("y", onnx.TensorProto.FLOAT, [1])]
    )
    onnx.save(onnx.helper.make_model(graph), bare)
    cases = [
        (garbage, "onnxruntime", "not a loadable ONNX model"),
        (bare, "onnxruntime", "no asr metadata"),
        (tmp_path / "missing.onnx", "onnxruntime", "no such file"),
        (trained_digits_model, "onnxruntime", "use `asr export` first"),
        (garbage, "torchscript", "not a loadable TorchScript model"),
    ]
    for path, backend, message in cases:
        assert main(["transcribe", str(path), "x.wav", "--backend", backend]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and message in err, err
    with pytest.raises(SystemExit):
        main(["export", str(trained_digits_model), str(tmp_path / "x.onnx"), "--format", "tflite"])
    assert "invalid choice" in capsys.readouterr().err


def spoken_digits(count: int, seed: int) -> tuple[np.ndarray, str]:
    """``count`` digit strings read by eSpeak's en-US voice (the test model's best), 0.7-1.5 s of
    near-silence between them: pauses long enough to end a segment."""
    rng = random.Random(seed)
    pieces, texts = [], []
    for _ in range(count):
        text = ". ".join(digit_string(rng) for _ in range(rng.randint(1, 3)))
        pieces.append(speech(text, rate=140))
        pieces.append(np.zeros(int(rng.uniform(0.7, 1.5) * 16000), np.float32))
        texts.append(text.replace(".", ""))
    audio = np.concatenate(pieces)
    return audio + np.random.default_rng(seed).normal(0, 1e-4, audio.shape).astype(np.float32), " ".join(texts)


def stream_through(model, audio, piece_seconds, **options):
    """The finished stream, each piece's partial text, and the final segments with the number of
    samples fed when each came."""
    stream = model.stream(chunk_seconds=1.0, lookahead_seconds=0.5, **options)
    piece = round(piece_seconds * 16000)
    partials, finals = [], []
    for first in range(0, len(audio), piece):
        update = stream.feed(audio[first : first + piece])
        partials.append(update.partial)
        finals += [(segment, first + piece) for segment in update.final]
    finals += [(segment, len(audio)) for segment in stream.finish().final]
    return stream, partials, finals


def test_a_long_file_streamed_in_100_ms_pieces_gives_the_offline_words(model):
    audio, truth = long_speech(150)  # read without long pauses: finals come at forced cuts
    offline = model.transcribe(audio)
    assert error_rates([truth], [offline.text]).wer < 0.15  # the test model hears this voice well
    stream, partials, finals = stream_through(model, audio, 0.1)
    # the measured difference: 0.2% on this file and on another seed's (near-ties at other cuts)
    assert error_rates([offline.text], [stream.text]).wer <= 0.01, (offline.text, stream.text)
    assert [segment for segment, _ in finals] == stream.segments
    ends = [w.end for s in stream.segments for w in s.words]
    assert ends == sorted(ends) and ends[-1] <= len(audio) / 16000 + 0.01
    assert any(len(b) > len(a) > 0 for a, b in zip(partials, partials[1:]))  # partial text grows
    other = stream_through(model, audio, 0.37)[0]  # pieces of another size
    assert error_rates([offline.text], [other.text]).wer <= 0.01


def test_a_pause_makes_the_words_before_it_final_within_two_seconds(model):
    audio, truth = spoken_digits(8, seed=11)  # 0.7-1.5 s pauses between readings
    stream, _, finals = stream_through(model, audio, 0.1)
    assert len(finals) >= 6 and error_rates([truth], [stream.text]).wer < 0.4
    before_the_end = [(segment, fed) for segment, fed in finals if fed < len(audio)]
    assert len(before_the_end) >= 5  # not all at finish(): each pause closed its segment
    for segment, fed in before_the_end:
        # the pause is seen once its middle is in a decoded chunk and the look-ahead after it is
        # fed: the segment's end + 0.75 s of pause at most + 1 s chunk + 0.5 s look-ahead
        assert fed / 16000 - segment.end <= 2.3, (segment, fed / 16000)


def test_no_final_comes_before_the_stream_has_heard_settle_seconds(model):
    audio, text = spoken_digits(6, seed=8)  # pauses that close segments from the first seconds on
    assert len(audio) > 8 * 16000
    prompt, _, prompt_finals = stream_through(model, audio, 0.1, settle_seconds=0.0)
    settled, partials, settled_finals = stream_through(model, audio, 0.1, settle_seconds=6.0)
    assert prompt_finals[0][1] < 4 * 16000  # with no wait, the first pause makes a final
    assert min(fed for _, fed in settled_finals) >= 6 * 16000
    assert any(partial for partial in partials[:40])  # the words still show as partial text at once
    assert error_rates([text], [settled.text]).wer <= error_rates([text], [prompt.text]).wer + 0.05
    assert model.stream().settle == 0  # this model has no utterance mean norm: nothing to wait for
    config = copy.deepcopy(model.config)
    config.features.utterance_mean_norm = True
    mean_norm = CTCModel(config.features.n_mels, len(model.vocabulary), config.model, True)
    assert Recognizer(config, model.vocabulary, mean_norm, torch.device("cpu")).stream().settle == 15 * 16000
    with pytest.raises(ValueError, match="settle_seconds must be a finite number, 0 or more, not nan"):
        model.stream(settle_seconds=float("nan"))


def test_a_stream_of_silence_gives_no_words_and_a_finished_stream_takes_no_more(model):
    stream = model.stream()
    for _ in range(30):
        assert stream.feed(np.zeros(1600, np.float32)).final == []
    assert stream.finish().final == [] and stream.text == ""
    with pytest.raises(ValueError, match="finished"):
        stream.feed(np.zeros(160, np.float32))
    with pytest.raises(ValueError, match="chunk_seconds"):
        model.stream(chunk_seconds=0)


def test_regions_are_cut_where_voice_activity_heard_a_pause_not_at_the_quietest_sound():
    rate, frame = 16000, 640
    audio = (0.1 * np.random.default_rng(0).standard_normal(rate * 40)).astype(np.float32)
    audio[int(24.0 * rate) : int(24.3 * rate)] *= 0.001  # the quietest stretch lies inside a word
    speech_heard = [(0.0, 22.0), (22.8, 40.0)]  # the pause the VAD heard: 22.0-22.8 s
    config = DecodingConfig(chunk_seconds=30, chunk_context_seconds=2, cut_search_seconds=8)
    energy_cut = plan_regions(audio, rate, frame, config)[0][1]
    vad_cut = plan_regions(audio, rate, frame, config, speech_heard)[0][1]
    assert 24.0 <= energy_cut / rate <= 24.3
    assert vad_cut % frame == 0 and abs(vad_cut / rate - 22.4) < 0.05


def test_long_speech_is_cut_only_in_pauses_the_vad_heard(model):
    audio, _ = spoken_digits(16, seed=4)  # readings of up to 9 s, then a pause
    config = DecodingConfig(chunk_seconds=20, chunk_context_seconds=2, cut_search_seconds=10)
    heard = speech_stretches(audio, 16000)
    regions = plan_regions(audio, 16000, model.frame_samples, config, heard)
    assert len(regions) >= 3
    for _, cut in regions[:-1]:
        assert not any(start < cut / 16000 < end for start, end in heard), cut / 16000


def listen(model_path, wav, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "asr.cli", "listen", str(model_path), "--input", str(wav), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # A test run started in the background (nohup ... &) ignores SIGINT, and the child would
        # inherit that; Ctrl-C as a user at a terminal sends it must reach the child.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def final_lines(stdout: str) -> list[str]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert all(line.startswith("[") and " --> " in line for line in lines), stdout
    return [line.split("] ", 1)[1] if "] " in line else "" for line in lines]


def test_listen_replays_a_file_at_real_time_through_the_stream(model, trained_digits_model, tmp_path):
    audio, _ = spoken_digits(4, seed=21)
    wav = write_wav(tmp_path / "said.wav", audio)
    started = time.monotonic()
    process = listen(trained_digits_model, wav)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert time.monotonic() - started >= len(audio) / 16000  # real time: no sooner than it was said
    stream, _, _ = stream_through(model, audio, 0.1)
    assert " ".join(final_lines(stdout)) == stream.text and stream.text
    assert "... " in stderr  # partial lines (not a terminal: one line per change)


def test_ctrl_c_stops_listening_and_flushes_the_words_heard_so_far(trained_digits_model, tmp_path):
    audio, truth = spoken_digits(8, seed=5)
    wav = write_wav(tmp_path / "long.wav", audio)
    process = listen(trained_digits_model, wav)
    for line in process.stderr:  # the first partial text: the model is loaded and hearing speech
        if line.startswith("... "):
            break
    time.sleep(2)
    assert process.poll() is None, "asr listen ended before Ctrl-C"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    heard = " ".join(final_lines(stdout)).split()
    assert 0 < len(heard) < len(truth.split()) / 2  # the words of the first seconds, not the whole file


def test_listen_without_a_microphone_says_so_in_one_line(trained_digits_model, capsys):
    try:
        import sounddevice

        if any(device["max_input_channels"] > 0 for device in sounddevice.query_devices()):
            pytest.skip("this machine has a microphone")
    except (ImportError, OSError):
        pass  # no PortAudio: the case under test
    assert main(["listen", str(trained_digits_model)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("asr: error: no microphone input") and err.count("\n") == 1, err


def test_a_model_with_rnn_batch_norm_loads_folded_and_saves_and_exports_the_same_log_probs(tmp_path):
    from asr.checkpoint import atomic_save, model_payload
    from asr.config import Config, ModelConfig, config_to_dict
    from asr.features import LogMel
    from asr.model import CTCModel
    from asr.text import Vocabulary

    torch.manual_seed(0)
    config = Config(model=ModelConfig(num_layers=2, hidden_size=16, conv_channels=4, rnn_batch_norm=True))
    vocabulary = Vocabulary()
    model = CTCModel(config.features.n_mels, len(vocabulary), config.model)
    spoken = [speech("one two three"), speech("four")]
    counts = torch.tensor([len(audio) for audio in spoken])
    waveforms = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(audio) for audio in spoken], batch_first=True)
    features, lengths = LogMel(config.features)(waveforms, counts)
    for _ in range(3):  # training-mode passes: running statistics away from the identity
        model(features, lengths)
    model.eval()
    logits, frames = model(features, lengths)
    expected = logits.log_softmax(-1)
    atomic_save(model_payload(model, config_to_dict(config), vocabulary.characters), tmp_path / "bn.pt")

    loaded = asr.load_model(tmp_path / "bn.pt", device="cpu")
    assert loaded.model.rnn_norms is None and not loaded.config.model.rnn_batch_norm  # a plain stack, said so
    loaded.save(tmp_path / "folded.pt")
    runners = [loaded, asr.load_model(tmp_path / "folded.pt", device="cpu")]
    runners.append(asr.load_model(loaded.export(tmp_path / "bn.onnx", "onnx")))
    for runner in runners:
        got, got_frames = runner.log_probs(waveforms, counts)
        assert torch.equal(got_frames.long(), frames.long())
        for row, length in enumerate(frames.tolist()):
            assert (got[row, :length] - expected[row, :length]).abs().max() < 1e-4, runner.backend


@pytest.mark.parametrize("rnn_type", ["gru", "rnn"])
def test_gru_and_plain_rnn_models_export_to_the_same_log_probs(tmp_path, rnn_type):
    from asr.checkpoint import atomic_save, model_payload
    from asr.config import Config, ModelConfig, config_to_dict
    from asr.export import int8_model
    from asr.model import CTCModel
    from asr.text import Vocabulary

    torch.manual_seed(0)
    config = Config(model=ModelConfig(rnn_type=rnn_type, num_layers=2, hidden_size=16, conv_channels=4))
    vocabulary = Vocabulary()
    network = CTCModel(config.features.n_mels, len(vocabulary), config.model).eval()
    atomic_save(model_payload(network, config_to_dict(config), vocabulary.characters), tmp_path / "m.pt")
    model = asr.load_model(tmp_path / "m.pt", device="cpu")
    spoken = [speech("one two three"), speech("four")]
    counts = torch.tensor([len(audio) for audio in spoken])
    waveforms = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(audio) for audio in spoken], batch_first=True)
    expected, frames = model.log_probs(waveforms, counts)
    for form in ("onnx", "torchscript"):
        exported = asr.load_model(model.export(tmp_path / f"m.{form}", form))
        got, got_frames = exported.log_probs(waveforms, counts)
        assert torch.equal(got_frames.long(), frames.long())
        for row, length in enumerate(frames.tolist()):
            assert (got[row, :length] - expected[row, :length]).abs().max() < 1e-4, form
    # int8 quantizes GRU and linear layers; PyTorch has no dynamic int8 plain RNN, so it stays fp32
    dynamic = torch.ao.nn.quantized.dynamic
    quantized = list(int8_model(model.model).modules())
    assert any(isinstance(m, dynamic.Linear) for m in quantized)
    if rnn_type == "gru":
        assert any(isinstance(m, dynamic.GRU) for m in quantized)
    else:
        assert any(isinstance(m, torch.nn.RNN) and m.weight_ih_l0.dtype == torch.float32 for m in quantized)
    int8_log_probs, _ = asr.load_model(model.export(tmp_path / "m_int8.onnx", "onnx", int8=True)).log_probs(
        waveforms, counts
    )
    assert int8_log_probs.shape == expected.shape and torch.isfinite(int8_log_probs).all()
