"""Deployment: the acoustic model (features + network) exported to ONNX or TorchScript, fp32 or int8,
and run again from those files.

An exported file maps padded waveforms (batch, samples) float32 and their sample counts (batch,)
int64 to CTC log-probabilities (batch, frames, vocab) and frame counts (batch,): everything before
the decoder, runnable by ONNX Runtime or ``torch.jit.load`` without this package. The vocabulary and
the whole config (features, model, decoding) travel inside the file: ONNX metadata, or a TorchScript
extra file, both under :data:`METADATA_KEY` as JSON.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import files
from .features import _LOG_FLOOR, LogMel
from .model import CTCModel, bidirectional_layers
from .version import __version__

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
BACKENDS = ("torch", "onnxruntime", "torchscript")
METADATA_KEY = "asr"
ONNX_OPSET = 17  # ONNX Runtime 1.18 and later run it
_INPUTS = ["waveforms", "sample_counts"]
_OUTPUTS = ["log_probs", "frame_counts"]


class ExportError(ValueError):
    """A file that is not a usable exported model, or an export that cannot be made."""


class AcousticGraph(nn.Module):
    """Waveforms -> log-mel features -> network -> log-probabilities, in operations both exporters
    know; the rest is :class:`~asr.features.LogMel` and :class:`~asr.model.CTCModel` as they are.

    ONNX has no complex tensors, so the power spectrum is built from real parts. With
    ``dft_as_matmul`` (for ONNX) the frames are gathered and multiplied by a windowed DFT basis,
    one matrix product: ONNX Runtime's STFT operator takes a plain O(n^2) DFT for frame sizes that
    are not powers of two (400 samples here) and was 41% of the int8 graph's time, 7-10x slower
    than the product (benchmarks/RESULTS.md). Otherwise ``torch.stft`` (an FFT) as real and
    imaginary parts, for TorchScript."""

    def __init__(self, frontend: LogMel, model: nn.Module, dft_as_matmul: bool = False):
        super().__init__()
        self.frontend = frontend
        self.model = model
        self.dft_as_matmul = dft_as_matmul
        if dft_as_matmul:
            self.register_buffer("dft_basis", self._dft_basis())  # an initializer by this name in ONNX

    def _dft_basis(self) -> torch.Tensor:
        """(n_fft, 2 * bins): the window times cosines, then the window times minus sines."""
        spectrogram = self.frontend.mel.spectrogram
        bins = spectrogram.n_fft // 2 + 1
        window = torch.zeros(spectrogram.n_fft, dtype=torch.float64)  # torch.stft centres a shorter window
        offset = (spectrogram.n_fft - spectrogram.win_length) // 2
        window[offset : offset + spectrogram.win_length] = spectrogram.window.double().cpu()
        angles = 2 * torch.pi * torch.outer(torch.arange(spectrogram.n_fft), torch.arange(bins)).double()
        angles = angles / spectrogram.n_fft
        return (torch.cat([torch.cos(angles), -torch.sin(angles)], dim=1) * window[:, None]).float()

    def power_spectrum(self, padded: torch.Tensor) -> torch.Tensor:
        """(batch, frames, n_fft // 2 + 1) power of the frames of ``padded`` (already centred)."""
        spectrogram = self.frontend.mel.spectrogram
        n_fft, hop = spectrogram.n_fft, spectrogram.hop_length
        if self.dft_as_matmul:
            frames = torch.div(padded.shape[1] - n_fft, hop, rounding_mode="floor") + 1
            starts = torch.arange(frames, device=padded.device)[:, None] * hop
            parts = torch.matmul(padded[:, starts + torch.arange(n_fft, device=padded.device)], self.dft_basis)
            bins = n_fft // 2 + 1
            return parts[..., :bins].pow(2) + parts[..., bins:].pow(2)
        with warnings.catch_warnings():  # return_complex=False: no complex tensors in the graph
            warnings.simplefilter("ignore")
            parts = torch.stft(
                padded,
                n_fft,
                hop,
                spectrogram.win_length,
                spectrogram.window,
                center=False,
                return_complex=False,
            )
        return parts.pow(2).sum(-1).transpose(1, 2)

    def forward(self, waveforms: torch.Tensor, sample_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.frontend.mel.spectrogram.n_fft // 2
        padded = self.frontend.reflect_padding(waveforms, sample_counts)
        padded = nn.functional.pad(padded[:, None], (half, half), mode="reflect")[:, 0]  # centred frames
        power = self.power_spectrum(padded)
        features = torch.log(torch.matmul(power, self.frontend.mel.mel_scale.fb) + _LOG_FLOOR)
        logits, frame_counts = self.model(features, self.frontend.frame_counts(sample_counts))
        return logits.float().log_softmax(-1), frame_counts


class UnpackedRNN(nn.Module):
    """A bidirectional RNN stack rebuilt as one single-layer, one-direction module per layer and
    direction, run on padded input as :func:`asr.model.bidirectional_rnn_unpacked` runs it (the
    reverse direction over each sequence reversed within its length): the same function, in modules
    that torch's dynamic quantization converts to int8 and that tracing records."""

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        self.layers = nn.ModuleList()
        for layer in range(rnn.num_layers):
            pair = nn.ModuleList()
            for suffix in ("", "_reverse"):
                weight_ih = getattr(rnn, f"weight_ih_l{layer}{suffix}")
                direction = type(rnn)(weight_ih.shape[1], rnn.hidden_size, 1, batch_first=True)
                if isinstance(rnn, nn.RNN):
                    direction.nonlinearity = rnn.nonlinearity
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(direction, f"{name}_l0").data.copy_(getattr(rnn, f"{name}_l{layer}{suffix}").data)
                pair.append(direction)
            self.layers.append(pair)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        layers = [(lambda s, f=ahead: f(s)[0], lambda s, b=behind: b(s)[0]) for ahead, behind in self.layers]
        return bidirectional_layers(layers, x, lengths)


def int8_model(model: CTCModel) -> CTCModel:
    """A copy of ``model`` (on the CPU, for inference) whose LSTM/GRU and linear layers hold int8
    weights (torch's dynamic quantization: activations quantized on the fly, per batch)."""
    quantized = copy.deepcopy(model).cpu().eval()
    quantized.rnn = UnpackedRNN(quantized.rnn)
    # torch.ao.quantization is deprecated in favour of torchao, which quantizes no LSTM or GRU yet;
    # torch 2.9-2.14 (the declared range) still have it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(quantized, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8)


def _metadata(config: dict, characters: list[str], int8: bool) -> str:
    return json.dumps({"asr_version": __version__, "config": config, "vocabulary": characters, "int8": int8})


def _example_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Two waveforms of different lengths: the export traces the padding paths too."""
    generator = torch.Generator().manual_seed(0)
    waveforms = 0.1 * torch.randn(2, 32000, generator=generator)
    return waveforms, torch.tensor([32000, 20000])


def export_onnx(frontend: LogMel, model: CTCModel, config: dict, characters: list[str], out: Path, int8: bool) -> None:
    """Write ``model`` with its features as an ONNX graph with dynamic batch and time axes; with
    ``int8``, quantized by ONNX Runtime's dynamic quantization (all but the DFT and mel filterbank products:
    the power spectrum spans too many decades for int8)."""
    import onnx

    model = copy.deepcopy(model).cpu().eval()
    model.packed_rnn = True  # ONNX's LSTM/GRU run each sequence to its length: no reversal gathers
    graph = AcousticGraph(frontend.cpu(), model, dft_as_matmul=True).eval()
    axes = {
        "waveforms": {0: "batch", 1: "samples"},
        "sample_counts": {0: "batch"},
        "log_probs": {0: "batch", 1: "frames"},
        "frame_counts": {0: "batch"},
    }
    buffer = io.BytesIO()
    with warnings.catch_warnings(), _native_stderr_filtered(_PACKING_SHAPE_NOTE):
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
        torch.onnx.export(
            graph,
            _example_inputs(),
            buffer,
            input_names=_INPUTS,
            output_names=_OUTPUTS,
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            dynamo=False,  # the dynamo exporter fails on the RNN's data-dependent lengths (torch 2.11)
        )
    proto = onnx.load_from_string(buffer.getvalue())
    if int8:
        proto = _quantize_onnx(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, _metadata(config, characters, int8)
    with files.atomic_write(out) as sink:
        sink.write(proto.SerializeToString())


# What the ONNX exporter's C++ side prints for every packed RNN, although the RNN operator that
# replaces the packing has its shapes: noise to a user of asr export.
_PACKING_SHAPE_NOTE = "The shape inference of prim::Pa"


@contextlib.contextmanager
def _native_stderr_filtered(note: str):
    """Run the block with file descriptor 2 captured, then write back every line but those holding
    ``note`` (native code writes there directly, past Python's ``warnings``)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(True) if note not in line]
            sys.stderr.write("".join(kept))


def _quantize_onnx(proto):
    """``proto`` (an ONNX ModelProto) with int8 weights for the RNN and the network's matrix
    products (ONNX Runtime's dynamic quantization). ONNX Runtime's integer convolution is slower
    than its float one, so the two small convolutions stay float, as do the DFT and the mel
    filterbank products: the spectrum spans too many decades for int8."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    float_weights = {"frontend.mel.mel_scale.fb", "dft_basis"}  # AcousticGraph's buffers, by module path
    keep_float = [n.name for n in proto.graph.node if n.op_type == "MatMul" and float_weights & set(n.input)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process, and notes on the integer tensors it skips
    try:
        with tempfile.TemporaryDirectory() as folder:
            quantized = Path(folder) / "int8.onnx"
            quantize_dynamic(
                proto,
                quantized,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gemm", "LSTM", "GRU"],
                nodes_to_exclude=keep_float,
            )
            return onnx.load(quantized)
    finally:
        root.setLevel(level)


def export_torchscript(
    frontend: LogMel, model: CTCModel, config: dict, characters: list[str], out: Path, int8: bool
) -> None:
    """Write ``model`` with its features as a traced TorchScript module (int8: torch's dynamic
    quantization of its RNN and linear layers first)."""
    model = int8_model(model) if int8 else model.cpu().eval()
    graph = AcousticGraph(frontend.cpu(), model).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
        traced = torch.jit.trace(graph, _example_inputs(), check_trace=False)
    with files.atomic_write(out) as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, still asked for
        torch.jit.save(traced, sink, _extra_files={METADATA_KEY: _metadata(config, characters, int8)})


def export(
    frontend: LogMel, model: CTCModel, config: dict, characters: list[str], out: str | Path, fmt: str, int8: bool
) -> Path:
    """Write the acoustic model in ``fmt`` (``onnx`` or ``torchscript``) to ``out``, atomically."""
    if fmt not in FORMATS:
        raise ExportError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    out = Path(out)
    for stale in files.remove_stale_temporaries(out.parent, out.name):  # what a killed export of it left
        log.info("removed %s, left by an interrupted export", stale.name)
    (export_onnx if fmt == "onnx" else export_torchscript)(frontend, model, config, characters, out, int8)
    return out


def detect_backend(path: str | Path) -> str:
    """The backend that runs the file at ``path``: ``onnxruntime`` for ONNX, ``torchscript`` for a
    TorchScript archive, ``torch`` for an asr model file or checkpoint."""
    path = Path(path)
    if path.suffix == ".onnx":
        return "onnxruntime"
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.split("/", 2)[1:2] == ["code"] for name in archive.namelist()):
                return "torchscript"
    return "torch"


class OnnxRuntimeAcoustic:
    """An exported ONNX acoustic model in an ONNX Runtime session, called like the torch one."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # idle threads sleep instead of spinning: they would take the cores torch's threads (voice
        # activity, features) need between calls (measured: 2 threads slower than 1 while spinning)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own types for every kind of bad file
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ExportError(f"{path}: not a loadable ONNX model ({reason})") from None
        self.metadata = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)

    def __call__(self, waveforms: torch.Tensor, sample_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs, frame_counts = self.session.run(
            _OUTPUTS,
            {"waveforms": waveforms.cpu().float().numpy(), "sample_counts": sample_counts.cpu().long().numpy()},
        )
        return torch.from_numpy(log_probs), torch.from_numpy(np.asarray(frame_counts))


class TorchScriptAcoustic:
    """An exported TorchScript acoustic model, on the CPU."""

    def __init__(self, path: Path):
        extra = {METADATA_KEY: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, still asked for
                self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval()
        except Exception as error:  # noqa: BLE001 - torch.jit raises RuntimeError and others for bad files
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ExportError(f"{path}: not a loadable TorchScript model ({reason})") from None
        self.metadata = extra[METADATA_KEY] or None

    @torch.no_grad()
    def __call__(self, waveforms: torch.Tensor, sample_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.module(waveforms.cpu().float(), sample_counts.cpu().long())


def load_exported(path: str | Path, backend: str, threads: int = 0) -> tuple[object, dict]:
    """The runner of an exported model (``backend`` ``onnxruntime`` or ``torchscript``) and the
    metadata it carries (``config``, ``vocabulary``, ``int8``, ``asr_version``)."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    if backend == "onnxruntime":
        runner = OnnxRuntimeAcoustic(path, threads or torch.get_num_threads())
    elif backend == "torchscript":
        runner = TorchScriptAcoustic(path)
    else:
        raise ExportError(f"backend for an exported model must be onnxruntime or torchscript, not {backend!r}")
    if runner.metadata is None:
        raise ExportError(f"{path}: no asr metadata (vocabulary and config): not exported by `asr export`")
    try:
        metadata = json.loads(runner.metadata)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deep to be ours
        raise ExportError(f"{path}: its asr metadata is damaged (not JSON: {type(error).__name__})") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("config"), dict):
        raise ExportError(f"{path}: its asr metadata is damaged (no config object)")
    if not isinstance(metadata.get("vocabulary"), list):
        raise ExportError(f"{path}: its asr metadata is damaged (no vocabulary list)")
    return runner, metadata
