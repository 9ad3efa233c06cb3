"""Typed configuration: dataclasses loaded from YAML recipes, overridable with ``section.key=value``."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class FeatureConfig:
    """Log-mel filterbank front-end."""

    sample_rate: int = 16000
    n_mels: int = 80
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    utterance_mean_norm: bool = False  # also subtract each utterance's own mean (speaker/channel robustness)


@dataclass
class SpecAugmentConfig:
    """Frequency and time masking, applied in training only."""

    enabled: bool = True
    freq_masks: int = 2
    freq_mask_width: int = 15  # mel bins
    time_masks: int = 2
    time_mask_width: int = 20  # frames (10 ms each)
    time_mask_max_ratio: float = 0.2  # no mask longer than this share of the utterance
    # Vocal tract length perturbation (VTLP): each utterance's frequency axis scaled by a factor drawn
    # from [1 - freq_warp, 1 + freq_warp], as if another speaker said it (0: off)
    freq_warp: float = 0.0


@dataclass
class ModelConfig:
    """Convolutional front-end (time subsampled by 4 or 2), bidirectional RNN stack, linear output."""

    rnn_type: str = "lstm"  # lstm | gru | rnn (plain tanh)
    num_layers: int = 3
    hidden_size: int = 256  # per direction
    dropout: float = 0.1
    conv_channels: int = 32
    # Input frames per output frame: 4 gives 25 frames/s, 2 gives 50 (twice the RNN work). CTC needs
    # a frame per character and one between doubled letters, so fast speech may need 2 (not yet shown).
    time_subsampling: int = 4
    # Deep Speech 2's sequence-wise batch norm on each RNN layer's input (training statistics over
    # every valid frame of the batch). Training runs the stack unpacked on every device; a model
    # file loaded for inference has the norms folded into the RNN's input weights (a plain stack).
    rnn_batch_norm: bool = False


@dataclass
class CorpusConfig:
    """One of several training manifests, and its share of each epoch's audio."""

    path: str = ""
    # Shares are weight / sum of weights of each epoch's audio (the corpora's total duration): a
    # corpus whose share exceeds its own audio is repeated, one below it is sampled, anew each epoch.
    weight: float = 1.0
    name: str = ""  # in logs and train_log.csv; empty: the manifest's file name without .jsonl


@dataclass
class DataConfig:
    """Manifests and batching."""

    train_manifest: str = ""
    # Several corpora at once (instead of train_manifest), e.g. [{path: a.jsonl, weight: 3}, {path: b.jsonl}]
    train_manifests: list[CorpusConfig] = field(default_factory=list)
    dev_manifest: str = ""
    vocabulary: str = "default"  # default | from_training_data (default chars plus any the transcripts need)
    max_batch_seconds: float = 120.0  # padded audio seconds per batch
    max_duration: float = 30.0  # longer training utterances are skipped (with a count in the log)
    skip_bad: bool = False  # warn and skip bad manifest lines instead of stopping
    num_workers: int = 1
    speed_perturbation: list[float] = field(default_factory=list)  # e.g. [0.9, 1.0, 1.1]; empty: off
    # SortaGrad (Deep Speech 2): the first epoch serves its batches shortest first, so the model meets
    # short, easy utterances while its gradients are still large; later epochs are shuffled as usual.
    sortagrad: bool = False
    normalization_utterances: int = 2000  # utterances sampled to estimate feature mean/variance
    # Share of training utterances band-limited as if recorded at 8 kHz (telephone audio), so the model
    # also transcribes narrowband input: without it the empty bins above 4 kHz are unlike anything heard.
    narrowband_probability: float = 0.0
    reverb_probability: float = 0.0  # share of training utterances heard in a synthetic room (0: off)
    reverb_rt60: list[float] = field(default_factory=lambda: [0.2, 0.8])  # the room's RT60 (s), drawn from this range
    noise_dir: str = ""  # folder of noise recordings mixed into training audio (empty: off)
    noise_probability: float = 0.5  # share of training utterances that get noise
    noise_snr_db: list[float] = field(default_factory=lambda: [5.0, 25.0])  # SNR drawn uniformly from this range


@dataclass
class TrainConfig:
    """Optimisation, checkpoints and logging."""

    exp_dir: str = "exp"
    epochs: int = 10
    max_steps: int = 0  # stop after this many steps in all (0: no limit); the LR schedule still spans all epochs
    lr: float = 1e-3
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * min_lr_ratio
    weight_decay: float = 0.01
    warmup_steps: int = 200
    grad_clip: float = 5.0
    checkpoint_every: int = 500  # steps; a checkpoint is also written at each epoch's end
    eval_every_epochs: int = 1
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision, on CUDA only
    amp_dtype: str = "auto"  # auto (bf16 where supported, else fp16) | bf16 | fp16
    accumulate_batches: int = 1  # batches whose gradients make one optimiser step
    early_stopping_patience: int = 0  # stop after this many evaluations without a better dev score (0: off)
    # What "better on dev" means for best.pt, model.pt and early stopping: wer, or cer for models
    # still writing mostly non-words (WER over 100% then says little: one real word counts as much
    # as a run of fragments).
    best_metric: str = "wer"
    average_last: int = 0  # model.pt averages the last k epoch models when that is no worse on dev (0: off)
    resume: bool = True  # continue from exp_dir/checkpoint.pt when it exists
    # start from this model file's weights (same model config and vocabulary), e.g. one pretrained on synthetic speech
    init_from: str = ""
    # with init_from: re-estimate the feature mean and variance on this run's data (false: keep the model's)
    renormalize: bool = True
    # with init_from: gradient of stay_close * |w - w0|^2 added, w0 its weights (L2-SP; 0: off)
    stay_close: float = 0.0
    freeze: list[str] = field(default_factory=list)  # parameters (name prefixes, e.g. subsample, rnn.) not trained
    threads: int = 0  # torch CPU threads (0: torch's default)


@dataclass(frozen=True)
class DecodingConfig:
    """How a model file decodes: stored with the model, overridable per call."""

    method: str = "greedy"  # greedy | beam; giving an lm selects beam search by itself
    lm: str = ""  # KenLM n-gram LM (ARPA or binary): a word LM with a lexicon, a character LM without
    lexicon: str = ""  # words and spellings (asr.decoding.write_lexicon); empty: lexicon-free
    hotwords: str = ""  # words to favour, added to the lexicon if missing (asr.decoding.read_hotwords)
    beam_size: int = 50
    beam_threshold: float = 10.0  # hypotheses this far below the best are dropped (10 lost nothing against 25: faster)
    beam_size_token: int = 0  # only this many most likely tokens are tried per frame (0: all)
    lm_weight: float = 2.0
    word_score: float = 0.0
    chunk_seconds: float = 30.0  # longer audio is cut into chunks of at most this length
    chunk_context_seconds: float = 2.0  # audio each chunk sees beyond its cut points, on each side
    cut_search_seconds: float = 5.0  # a cut goes at the quietest point within this window before the limit
    silence_db: float = -65.0  # output frames in audio quieter than this (dBFS RMS, +-0.2 s) give no text
    vad: str = "silero"  # silero | off: output frames the voice-activity detector calls non-speech give no text
    vad_threshold: float = 0.3  # Silero's speech probability above which a stretch is speech
    vad_pad_seconds: float = 0.3  # frames this close to speech are kept (words' soft edges)
    vad_loud_db: float = 15.0  # sound this far above the recording's noise floor is kept as speech too (0: off)
    word_break_seconds: float = 0.3  # this much silence (blank frames) ends a word even without a space
    segment_pause_seconds: float = 0.6  # a pause this long between words starts a new segment
    max_segment_seconds: float = 10.0  # segments (subtitle lines) are at most about this long
    max_audio_seconds: float = (
        6 * 3600.0
    )  # longer inputs are refused before decoding (asr.audio.DEFAULT_MAX_AUDIO_SECONDS)
    allow_truncated: bool = False  # transcribe what a file shorter than its header says holds, instead of an error

    def __post_init__(self) -> None:
        """Refuse values no decoding can use, whatever made or changed this config: a YAML file, a
        model file, ONNX metadata, command-line flags or ``dataclasses.replace`` in the API."""
        for key, value, acceptable, expected in _decoding_checks(self):
            if not acceptable:
                raise ValueError(f"{key} must be {expected}, not {value!r}")


@dataclass
class Config:
    """A whole recipe."""

    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)


def corpus_names(data: DataConfig) -> list[str]:
    """The names of ``data.train_manifests``' corpora (a manifest's file name when not given)."""
    return [c.name or Path(c.path).name.removesuffix(".jsonl") for c in data.train_manifests]


Check = tuple[str, Any, bool, str]  # key, value, whether it is acceptable, what is acceptable


def _range_checks(config: Config) -> list[Check]:
    """Every value with a meaningful range, checked (the ``decoding`` section checks itself)."""
    return _corpus_checks(config.data) + _input_and_model_checks(config) + _training_checks(config)


def _corpus_checks(d: DataConfig) -> list[Check]:
    """``data.train_manifests``: one way of naming the training data, weights, paths, names."""
    names = corpus_names(d)
    return [
        (
            "data.train_manifests",
            [c.path for c in d.train_manifests],
            not (d.train_manifest and d.train_manifests),
            "empty when data.train_manifest is given (one or the other)",
        ),
        *[
            (f"data.train_manifests[{i}].weight", c.weight, 0 < c.weight < math.inf, "positive and finite")
            for i, c in enumerate(d.train_manifests)
        ],
        *[
            (f"data.train_manifests[{i}].path", c.path, bool(c.path), "a manifest path")
            for i, c in enumerate(d.train_manifests)
        ],
        ("data.train_manifests", names, len(set(names)) == len(names), "corpora of different names"),
    ]


def _input_and_model_checks(config: Config) -> list[Check]:
    """The ``data``, ``features``, ``specaugment`` and ``model`` sections."""
    d, f, s, m = config.data, config.features, config.specaugment, config.model
    return [
        (
            "data.vocabulary",
            d.vocabulary,
            d.vocabulary in ("default", "from_training_data"),
            "default or from_training_data",
        ),
        ("data.max_batch_seconds", d.max_batch_seconds, d.max_batch_seconds > 0, "positive"),
        ("data.max_duration", d.max_duration, d.max_duration > 0, "positive"),
        ("data.num_workers", d.num_workers, d.num_workers >= 0, "0 or more"),
        (
            "data.speed_perturbation",
            d.speed_perturbation,
            all(0.5 <= v <= 2 for v in d.speed_perturbation),
            "speeds from 0.5 to 2",
        ),
        ("data.normalization_utterances", d.normalization_utterances, d.normalization_utterances >= 1, "1 or more"),
        ("data.narrowband_probability", d.narrowband_probability, 0 <= d.narrowband_probability <= 1, "from 0 to 1"),
        ("data.reverb_probability", d.reverb_probability, 0 <= d.reverb_probability <= 1, "from 0 to 1"),
        (
            "data.reverb_rt60",
            d.reverb_rt60,
            len(d.reverb_rt60) == 2 and 0 < d.reverb_rt60[0] <= d.reverb_rt60[1],
            "[shortest, longest] seconds, positive",
        ),
        ("data.noise_probability", d.noise_probability, 0 <= d.noise_probability <= 1, "from 0 to 1"),
        (
            "data.noise_snr_db",
            d.noise_snr_db,
            len(d.noise_snr_db) == 2 and d.noise_snr_db[0] <= d.noise_snr_db[1],
            "[lowest, highest]",
        ),
        ("features.sample_rate", f.sample_rate, 1000 <= f.sample_rate <= 384000, "from 1000 to 384000 Hz"),
        ("features.n_mels", f.n_mels, f.n_mels >= 1, "1 or more"),
        ("features.window_ms", f.window_ms, f.window_ms > 0, "positive"),
        (
            "features.hop_ms",
            f.hop_ms,
            f.sample_rate * f.hop_ms / 1000 >= 1 and f.hop_ms <= f.window_ms,
            "at least one sample and at most window_ms",
        ),
        (
            "features.n_fft",
            f.n_fft,
            f.window_ms * f.sample_rate / 1000 <= f.n_fft <= MAX_N_FFT,
            f"at least the window's samples and at most {MAX_N_FFT}",
        ),
        ("specaugment.freq_masks", s.freq_masks, s.freq_masks >= 0, "0 or more"),
        (
            "specaugment.freq_mask_width",
            s.freq_mask_width,
            0 <= s.freq_mask_width <= f.n_mels,
            "from 0 to features.n_mels",
        ),
        ("specaugment.time_masks", s.time_masks, s.time_masks >= 0, "0 or more"),
        ("specaugment.time_mask_width", s.time_mask_width, s.time_mask_width >= 0, "0 or more"),
        ("specaugment.time_mask_max_ratio", s.time_mask_max_ratio, 0 <= s.time_mask_max_ratio <= 1, "from 0 to 1"),
        ("specaugment.freq_warp", s.freq_warp, 0 <= s.freq_warp < 0.5, "from 0 to below 0.5"),
        ("model.rnn_type", m.rnn_type, m.rnn_type in ("lstm", "gru", "rnn"), "lstm, gru or rnn"),
        ("model.num_layers", m.num_layers, m.num_layers >= 1, "1 or more"),
        ("model.hidden_size", m.hidden_size, m.hidden_size >= 1, "1 or more"),
        ("model.dropout", m.dropout, 0 <= m.dropout < 1, "from 0 to below 1"),
        ("model.conv_channels", m.conv_channels, m.conv_channels >= 1, "1 or more"),
        ("model.time_subsampling", m.time_subsampling, m.time_subsampling in (2, 4), "2 or 4"),
    ]


def _number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (not a bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _training_checks(config: Config) -> list[Check]:
    """The ``train`` section."""
    t = config.train
    return [
        ("train.epochs", t.epochs, t.epochs >= 1, "1 or more"),
        ("train.max_steps", t.max_steps, t.max_steps >= 0, "0 (no limit) or more"),
        ("train.lr", t.lr, t.lr >= 0, "0 or more"),
        ("train.min_lr_ratio", t.min_lr_ratio, 0 <= t.min_lr_ratio <= 1, "from 0 to 1"),
        ("train.weight_decay", t.weight_decay, t.weight_decay >= 0, "0 or more"),
        ("train.warmup_steps", t.warmup_steps, t.warmup_steps >= 0, "0 or more"),
        ("train.grad_clip", t.grad_clip, t.grad_clip > 0, "positive (a gradient-norm limit)"),
        ("train.checkpoint_every", t.checkpoint_every, t.checkpoint_every >= 1, "1 or more steps"),
        ("train.eval_every_epochs", t.eval_every_epochs, t.eval_every_epochs >= 1, "1 or more"),
        (
            "train.device",
            t.device,
            t.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", t.device) is not None,
            "auto, cpu, cuda or cuda:N",
        ),
        ("train.amp_dtype", t.amp_dtype, t.amp_dtype in ("auto", "bf16", "fp16"), "auto, bf16 or fp16"),
        ("train.accumulate_batches", t.accumulate_batches, t.accumulate_batches >= 1, "1 or more"),
        ("train.early_stopping_patience", t.early_stopping_patience, t.early_stopping_patience >= 0, "0 (off) or more"),
        ("train.best_metric", t.best_metric, t.best_metric in ("wer", "cer"), "wer or cer"),
        ("train.stay_close", t.stay_close, t.stay_close >= 0, "0 (off) or more"),
        (
            "train.stay_close",
            t.stay_close,
            not (t.stay_close and not t.init_from),
            "0 without train.init_from (the weights to stay close to)",
        ),
        ("train.freeze", t.freeze, all(isinstance(p, str) and p for p in t.freeze), "a list of name prefixes"),
        ("train.average_last", t.average_last, t.average_last >= 0, "0 (off) or more"),
        ("train.threads", t.threads, t.threads >= 0, "0 (torch's default) or more"),
    ]


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


MAX_N_FFT = 16384  # 1 s at 16 kHz; the spectrogram of a long chunk grows with it
MAX_CHUNK_SECONDS = 3600.0  # the acoustic model holds a whole chunk (and its outputs) in memory


def _decoding_checks(c: DecodingConfig) -> list[Check]:
    """The ``decoding`` section: checked whenever a :class:`DecodingConfig` is made, types too
    (``dataclasses.replace`` checks none)."""
    chunk = _number(c.chunk_seconds) and _number(c.chunk_context_seconds)
    return [
        ("decoding.method", c.method, c.method in ("greedy", "beam"), "greedy or beam"),
        ("decoding.lm", c.lm, isinstance(c.lm, str), "a path (text)"),
        ("decoding.lexicon", c.lexicon, isinstance(c.lexicon, str), "a path (text)"),
        ("decoding.hotwords", c.hotwords, isinstance(c.hotwords, str), "a path (text)"),
        ("decoding.beam_size", c.beam_size, _integer(c.beam_size) and c.beam_size >= 1, "a whole number, 1 or more"),
        ("decoding.beam_threshold", c.beam_threshold, _number(c.beam_threshold) and c.beam_threshold > 0, "positive"),
        (
            "decoding.beam_size_token",
            c.beam_size_token,
            _integer(c.beam_size_token) and c.beam_size_token >= 0,
            "a whole number, 0 (all) or more",
        ),
        ("decoding.lm_weight", c.lm_weight, _number(c.lm_weight), "a finite number"),
        ("decoding.word_score", c.word_score, _number(c.word_score), "a finite number"),
        (
            "decoding.chunk_seconds",
            c.chunk_seconds,
            chunk and 2 * c.chunk_context_seconds < c.chunk_seconds <= MAX_CHUNK_SECONDS,
            f"more than twice chunk_context_seconds and at most {MAX_CHUNK_SECONDS:g}",
        ),
        (
            "decoding.chunk_context_seconds",
            c.chunk_context_seconds,
            _number(c.chunk_context_seconds) and c.chunk_context_seconds >= 0,
            "0 or more",
        ),
        (
            "decoding.cut_search_seconds",
            c.cut_search_seconds,
            chunk and _number(c.cut_search_seconds) and 0 <= c.cut_search_seconds < c.chunk_seconds,
            "from 0 to below chunk_seconds",
        ),
        ("decoding.silence_db", c.silence_db, _number(c.silence_db) and c.silence_db <= 0, "0 dBFS or below"),
        ("decoding.vad", c.vad, c.vad in ("silero", "off"), "silero or off"),
        (
            "decoding.vad_threshold",
            c.vad_threshold,
            _number(c.vad_threshold) and 0 < c.vad_threshold < 1,
            "between 0 and 1",
        ),
        *[
            (f"decoding.{key}", getattr(c, key), _number(getattr(c, key)) and getattr(c, key) >= 0, "0 or more")
            for key in ("vad_pad_seconds", "vad_loud_db")
        ],
        *[
            (f"decoding.{key}", getattr(c, key), _number(getattr(c, key)) and getattr(c, key) > 0, "positive")
            for key in ("word_break_seconds", "segment_pause_seconds", "max_segment_seconds", "max_audio_seconds")
        ],
        ("decoding.allow_truncated", c.allow_truncated, isinstance(c.allow_truncated, bool), "true or false"),
    ]


def check_config(config: Config, source: str = "config") -> Config:
    """Refuse values no run can use (``ValueError`` naming ``source`` and the key), before any
    model is built: types are checked when the config is built, then every number is finite, then
    the ranges here."""
    for section in dataclasses.fields(config):
        values = getattr(config, section.name)
        for key in dataclasses.fields(values):
            value = getattr(values, key.name)
            items = value if isinstance(value, list) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in items):
                raise ValueError(f"{source}: {section.name}.{key.name} must be finite, not {value!r}")
    for key, value, acceptable, expected in _range_checks(config):
        if not acceptable:
            raise ValueError(f"{source}: {key} must be {expected}, not {value!r}")
    return config


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from ``values``, checking names and types."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value or {}, f"{where}.{name}" if where else name)
        else:
            kwargs[name] = _coerce(value, hint, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _coerce(value: Any, hint: type, where: str) -> Any:
    if typing.get_origin(hint) is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        (item_hint,) = typing.get_args(hint)
        if dataclasses.is_dataclass(item_hint):
            return [_build(item_hint, item, f"{where}[{i}]") for i, item in enumerate(value)]
        return [_coerce(item, item_hint, f"{where}[{i}]") for i, item in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 3e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build a :class:`Config` from nested plain values (as read from YAML or a model file)."""
    return _build(Config, values, "")


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested values of ``config`` (safe to store in a model file)."""
    return dataclasses.asdict(config)


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides to nested ``values``; each value is parsed as YAML."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        *parents, leaf = key.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part} is not a section")
        node[leaf] = yaml.safe_load(raw)
    return values


_PATH_KEYS = (
    ("data", "train_manifest"),
    ("data", "dev_manifest"),
    ("data", "noise_dir"),
    ("train", "exp_dir"),
    ("train", "init_from"),
)


def _resolve_paths(values: dict[str, Any], base: Path) -> None:
    for section, key in _PATH_KEYS:
        value = (values.get(section) or {}).get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            values[section][key] = str(base / value)
    corpora = (values.get("data") or {}).get("train_manifests")
    for corpus in corpora if isinstance(corpora, list) else []:
        path = corpus.get("path") if isinstance(corpus, dict) else None
        if isinstance(path, str) and path and not Path(path).is_absolute():
            corpus["path"] = str(base / path)


def _read_yaml_sections(path: Path) -> dict[str, Any]:
    """A config file's sections, its relative paths resolved against its folder."""
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise ValueError(
            f"{path}:{line} not valid YAML ({getattr(error, 'problem', None) or type(error).__name__})"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    if values is None:
        raise ValueError(f"{path}: empty config file")
    if not isinstance(values, dict):
        raise ValueError(
            f"{path}: a config is a mapping of sections (data, model, train, ...), not a {type(values).__name__}"
        )
    for section, entries in values.items():
        if entries is not None and not isinstance(entries, dict):
            raise ValueError(f"{path}: section {section!r} must be a mapping of keys, not a {type(entries).__name__}")
    _resolve_paths(values, path.resolve().parent)
    return values


def _merge(values: dict[str, Any], overlay: dict[str, Any]) -> None:
    """``overlay``'s keys replace ``values``' key by key within each section."""
    for section, entries in overlay.items():
        if entries is None:  # an empty section changes nothing
            continue
        if isinstance(entries, dict) and isinstance(values.get(section), dict):
            values[section].update(entries)
        else:
            values[section] = entries


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML recipe config and apply overrides: ``section.key=value`` items, or further YAML
    files (``.yaml``/``.yml``, no ``=``) whose keys replace the config's, e.g. a pretraining stage's.

    Relative paths in a file resolve against the file's folder, so a recipe runs from any
    working directory; relative paths in ``key=value`` overrides resolve against the current directory.
    """
    path = Path(path)
    values = _read_yaml_sections(path)
    for item in overrides or []:
        if "=" not in item and item.endswith((".yaml", ".yml")):
            _merge(values, _read_yaml_sections(Path(item)))
        else:
            overridden = apply_overrides({}, [item])
            _resolve_paths(overridden, Path.cwd())
            _merge(values, overridden)
    try:
        config = config_from_dict(values)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return check_config(config, str(path))
