"""A trained model ready to use: features, acoustic model, vocabulary and decoder together.

The acoustic model runs in torch (a model file or checkpoint), or from an exported file
(``asr export``) in ONNX Runtime or TorchScript; everything after it (decoding, voice activity,
chunking, timing) is the same code whichever backend computed the log-probabilities."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import torch

from .checkpoint import (
    DECODING_FILES,
    ModelFileError,
    atomic_save,
    decoding_files,
    load_model_file,
    model_payload,
    unpack_decoding_files,
)
from .config import Config, DecodingConfig, check_config, config_from_dict, config_to_dict
from .decoding import (
    BEAM_FIELDS,
    Decoder,
    build_decoder,
    check_lexicon_file,
    check_lm_file,
    read_hotwords,
    uses_beam_search,
)
from .distributed import pick_device
from .export import BACKENDS, ExportError, detect_backend, export, int8_model, load_exported
from .features import LogMel
from .files import atomic_write
from .model import CTCModel, conv_output_lengths
from .stream import Stream
from .text import Vocabulary
from .transcribe import align, transcribe


class Recognizer:
    """Feature extractor, acoustic model and vocabulary on one device.

    ``exported``, when given, computes the log-probabilities instead of ``model`` (then None): a
    callable (padded waveforms, sample counts) -> (log-probabilities, frame counts) such as
    :class:`asr.export.OnnxRuntimeAcoustic`; ``backend`` names it."""

    def __init__(
        self,
        config: Config,
        vocabulary: Vocabulary,
        model: CTCModel | None,
        device: torch.device,
        exported=None,
        backend: str = "torch",
    ):
        self.config = config
        self.vocabulary = vocabulary
        self.device = device
        self.frontend = LogMel(config.features).to(device)
        self.model = model.to(device).eval() if model is not None else None
        self.exported = exported
        self.backend = backend
        self._decoder: tuple[tuple, Decoder] | None = None

    def decoder(self, config: DecodingConfig | None = None) -> Decoder:
        """The decoder ``config`` (default: the model's decoding config) asks for: greedy, or beam
        search when it names an LM or a lexicon or ``method: beam``. Kept while the settings stay
        the same (building a beam search loads its LM)."""
        config = config or self.config.decoding
        key = (uses_beam_search(config), config.word_break_seconds) + tuple(getattr(config, f) for f in BEAM_FIELDS)
        if self._decoder is None or self._decoder[0] != key:
            self._decoder = (key, build_decoder(self.vocabulary, config))
        return self._decoder[1]

    @property
    def sample_rate(self) -> int:
        """The rate the model hears (inputs are resampled to it)."""
        return self.config.features.sample_rate

    @property
    def frame_samples(self) -> int:
        """Audio samples per output frame."""
        return self.frontend.hop_length * self.config.model.time_subsampling

    @property
    def frame_seconds(self) -> float:
        """Seconds per output frame."""
        return self.frame_samples / self.sample_rate

    def output_frames(self, num_samples: int) -> int:
        """Output frames for ``num_samples`` samples of audio."""
        frames = self.frontend.frame_counts(torch.tensor(num_samples))
        return int(conv_output_lengths(frames, self.config.model.time_subsampling))

    @torch.no_grad()
    def log_probs(self, waveforms: torch.Tensor, sample_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC log-probabilities (batch, frames, vocab) and valid frame counts for padded waveforms."""
        if self.exported is not None:
            return self.exported(waveforms, sample_counts)
        features, lengths = self.frontend(waveforms.to(self.device), sample_counts.to(self.device))
        logits, out_lengths = self.model(features, lengths)
        return logits.float().log_softmax(-1), out_lengths

    def decode(self, waveforms: torch.Tensor, sample_counts: torch.Tensor) -> list[str]:
        """Transcripts of a padded batch: greedy, or beam search when the decoding config asks."""
        log_probs, lengths = self.log_probs(waveforms, sample_counts)
        return self.decoder()(log_probs, lengths)

    def save(self, path: str | Path) -> None:
        """Write a self-contained model file (weights with normalisation statistics, configs including
        decoding, vocabulary, version, and the LM and lexicon the decoding names), atomically."""
        if self.backend != "torch":
            raise ExportError(f"a model run by {self.backend} cannot be saved as a model file: save the torch model")
        config = config_to_dict(self.config)
        self._check_decoding_files()
        carried = {"decoding_files": decoding_files(config["decoding"])}
        atomic_save(model_payload(self.model, config, self.vocabulary.characters, carried), path)

    def export(self, out: str | Path, fmt: str = "onnx", int8: bool = False) -> Path:
        """Write the acoustic model (features + network) with its vocabulary and config as ONNX or
        TorchScript (``fmt``), int8 with ``int8``; see :mod:`asr.export`. The LM and lexicon the
        decoding names are copied beside it (``OUT.lm.arpa``, ``OUT.lexicon.txt``): move them with it."""
        if self.backend != "torch":
            raise ExportError(f"only a torch model can be exported, not one run by {self.backend}")
        model = copy.deepcopy(self.model).cpu()
        frontend = LogMel(self.config.features)
        config = config_to_dict(self.config)
        self._check_decoding_files()
        for key in DECODING_FILES:  # the LM, lexicon and hot words go beside the file, named relative to it
            if config["decoding"][key]:
                source = Path(config["decoding"][key])
                beside = Path(out).with_name(f"{Path(out).name}.{key}{source.suffix}")
                with atomic_write(beside) as copied:
                    copied.write(source.read_bytes())
                config["decoding"][key] = beside.name
        return export(frontend, model, config, self.vocabulary.characters, out, fmt, int8)

    def _check_decoding_files(self) -> None:
        """Refuse to carry an LM, lexicon or hot-word list that is not one (a config can name any file)."""
        if self.config.decoding.lm:
            check_lm_file(self.config.decoding.lm)
        if self.config.decoding.lexicon:
            check_lexicon_file(self.config.decoding.lexicon, self.vocabulary)
        if self.config.decoding.hotwords:
            read_hotwords(self.config.decoding.hotwords, self.vocabulary)

    def transcribe(
        self,
        audio,
        batch_size: int = 16,
        sample_rate: int | None = None,
        errors: str = "raise",
        progress: bool = False,
        **decoding,
    ):
        """Transcribe a path, array or tensor (one :class:`~asr.transcribe.Transcription`) or a list of
        them (a list, in input order); see :func:`asr.transcribe.transcribe`."""
        return transcribe(self, audio, batch_size, sample_rate, errors, progress, **decoding)

    def stream(
        self,
        chunk_seconds: float = 1.0,
        lookahead_seconds: float = 0.5,
        context_seconds: float = 2.0,
        final_context_seconds: float | None = None,
        settle_seconds: float | None = None,
        **decoding,
    ) -> Stream:
        """A :class:`~asr.stream.Stream` to feed audio to piece by piece (at :attr:`sample_rate`): partial
        text as it grows, final segments with word times at pauses (decoded again with
        ``final_context_seconds`` of audio before them; default ``decoding.chunk_seconds``; none
        before ``settle_seconds`` of audio are there, by default :data:`asr.stream.SETTLE_SECONDS`
        for a model with utterance mean norm, else 0). Keyword arguments override the model's
        decoding config."""
        config = dataclasses.replace(self.config.decoding, **decoding)
        return Stream(
            self, chunk_seconds, lookahead_seconds, context_seconds, config, final_context_seconds, settle_seconds
        )

    def align(self, audio, text: str, sample_rate: int | None = None):
        """Word timings (a list of :class:`~asr.decoding.Word`) of a known transcript in one
        recording; see :func:`asr.transcribe.align`."""
        return align(self, audio, text, sample_rate)


def load_model(path: str | Path, device: str | None = None, backend: str = "auto", int8: bool = False) -> Recognizer:
    """Load a model file (or a training checkpoint) onto ``device`` (``cuda`` when available by
    default), or an exported model (``asr export``): ``backend`` is ``torch``, ``onnxruntime`` or
    ``torchscript``, or ``auto`` to go by the file. ``int8`` quantizes a torch model's RNN and
    linear layers on loading (CPU only)."""
    if backend == "auto":
        backend = detect_backend(path)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be auto or one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend != "torch":
        if detect_backend(path) == "torch" and Path(path).is_file():
            raise ExportError(f"{path}: an asr model file, not one exported for {backend}; use `asr export` first")
        runner, metadata = load_exported(path, backend)
        try:
            config = check_config(config_from_dict(metadata["config"]), f"{path}: config")
            vocabulary = Vocabulary(metadata["vocabulary"])
        except (ValueError, TypeError) as error:
            raise ExportError(f"{path}: its stored config cannot be used ({error})") from None
        config = dataclasses.replace(config, decoding=_decoding_files_found(path, {}, config.decoding))
        return Recognizer(config, vocabulary, None, torch.device("cpu"), exported=runner, backend=backend)
    recognizer = _load_torch_model(path, device)
    if int8:
        if recognizer.device.type != "cpu":
            raise ValueError("int8 models run on the CPU only: load with device='cpu'")
        recognizer.model = int8_model(recognizer.model)
        recognizer.backend = "torch-int8"
    return recognizer


def _load_torch_model(path: str | Path, device: str | None) -> Recognizer:
    data = load_model_file(path)
    try:
        config = check_config(config_from_dict(data["config"]), f"{path}: config")
        vocabulary = Vocabulary(data["vocabulary"])
        model = CTCModel(config.features.n_mels, len(vocabulary), config.model, config.features.utterance_mean_norm)
    except ValueError as error:
        raise ModelFileError(f"{path}: its stored config cannot build a model ({error})") from None
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as error:
        first = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), str(error).splitlines()[0])
        raise ModelFileError(f"{path}: its weights do not fit its config ({first})") from None
    model.fold_batch_norm()  # inference only: a plain RNN stack, and a saved copy says so
    config.model.rnn_batch_norm = False
    config = dataclasses.replace(config, decoding=_decoding_files_found(path, data, config.decoding))
    return Recognizer(config, vocabulary, model, pick_device(device))


def _decoding_files_found(path: str | Path, data: dict, decoding: DecodingConfig) -> DecodingConfig:
    """``decoding`` with its LM and lexicon at the copies the model file carries (unpacked), or, for
    a model file written before it carried them, a relative path taken from the model's folder."""
    unpacked = unpack_decoding_files(path, data)
    for key in DECODING_FILES:
        named = getattr(decoding, key)
        if key not in unpacked and named and not Path(named).is_absolute():
            unpacked[key] = str(Path(path).parent / named)
    return dataclasses.replace(decoding, **unpacked)
