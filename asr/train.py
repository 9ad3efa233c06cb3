"""Training, in named steps: :func:`build_state` (data, model, optimiser, resume), then epochs of
:func:`train_one_epoch` (each optimiser step a :func:`train_step`) and :func:`end_of_epoch` (dev
WER, best model, checkpoint), then :func:`write_final_model`. :func:`train` runs them in order.

Run it with ``asr train CONFIG.yaml [section.key=value ...]``. Rerunning the same command after
an interruption resumes exactly where the last checkpoint left off.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .augment import NoiseMixer, Reverberator
from .files import atomic_write
from .checkpoint import (
    CHECKPOINT_FORMAT,
    MODEL_FORMAT_VERSION,
    atomic_save,
    load_checkpoint,
    load_model_file,
    model_payload,
    remove_stale_temporaries,
)
from .config import Config, check_config, config_to_dict, corpus_names
from .data import (
    AudioDataset,
    Batch,
    DurationBatchSampler,
    Utterance,
    collate,
    ordered_batches,
    read_manifest,
    usable,
)
from .decoding import greedy_decode
from .distributed import broadcast_values, gather_tensors, setup_distributed, sum_over_ranks, wait_for_all
from .features import LogMel, SpecAugment, padding_mask
from .metrics import ErrorRates, error_rates
from .model import CTCModel
from .text import Vocabulary

log = logging.getLogger(__name__)

Observer = Callable[["Progress", list[int], torch.nn.Module], None]

LOG_COLUMNS = [
    "step",
    "epoch",
    "loss",
    "lr",
    "grad_norm",
    "utterances",
    "audio_seconds",
    "padded_fraction",
    "data_seconds",
    "feature_seconds",
    "step_seconds",
    "audio_seconds_per_second",
    "corpus_audio_seconds",  # with data.train_manifests: "name=seconds ..." of the step's audio
]
DEV_LOG_COLUMNS = ["step", "epoch", "dev_wer", "dev_cer"]


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of ``epoch`` already trained on
    best_dev_score: float = math.inf  # dev WER or CER (train.best_metric)
    evaluations_since_best: int = 0  # for early stopping


def build_vocabulary(config: Config) -> Vocabulary:
    """The default characters, or those plus whatever the training transcripts need."""
    if config.data.vocabulary == "default":
        return Vocabulary()
    if config.data.vocabulary == "from_training_data":
        texts = [
            u.text for _, path, _ in training_corpora(config) for u in read_manifest(path, None, config.data.skip_bad)
        ]
        vocabulary = Vocabulary.from_texts(texts)
        extra = vocabulary.characters[len(Vocabulary().characters) :]
        if extra:
            log.info("vocabulary: added %s from the training transcripts", ", ".join(map(repr, extra)))
        return vocabulary
    raise ValueError(f"data.vocabulary must be 'default' or 'from_training_data', not {config.data.vocabulary!r}")


def init_weights(model: CTCModel, path: str, vocabulary: Vocabulary) -> None:
    """Load a model file's weights into ``model``, which must have the same shape and vocabulary."""
    data = load_model_file(path)
    if data["vocabulary"] != vocabulary.characters:
        raise ValueError(f"{path}: train.init_from has another vocabulary than this run")
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as error:
        raise ValueError(
            f"{path}: train.init_from does not fit this run's model config: {str(error).splitlines()[0]}"
        ) from None


@torch.no_grad()
def estimate_normalization(
    model: CTCModel, frontend: LogMel, utterances: list[Utterance], config: Config, device: torch.device
) -> None:
    """Set the model's feature mean/variance from (a seeded sample of) the training utterances."""
    rng = random.Random(config.train.seed)
    sample = (
        utterances
        if len(utterances) <= config.data.normalization_utterances
        else rng.sample(utterances, config.data.normalization_utterances)
    )
    dataset = AudioDataset(sample, None, config.features.sample_rate)
    sampler = DurationBatchSampler([u.duration for u in sample], config.data.max_batch_seconds, shuffle=False)
    total = torch.zeros(config.features.n_mels, dtype=torch.float64, device=device)
    total_sq = torch.zeros_like(total)
    count = 0
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=config.data.num_workers)
    for batch in tqdm(loader, desc="feature statistics", unit="batch", leave=False):
        if not usable(batch, config.data.skip_bad):
            continue
        features, lengths = frontend(batch.waveforms.to(device), batch.sample_counts.to(device))
        valid = ~padding_mask(lengths, features.shape[1])
        frames = features[valid].double()
        total += frames.sum(0)
        total_sq += (frames**2).sum(0)
        count += frames.shape[0]
    model.normalize.set_statistics(total.float(), total_sq.float(), count)
    empty = model.normalize.empty_bins()
    if empty:
        log.info("%d of %d mel bins are empty in the training audio; the model ignores them", len(empty), len(total))


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _random_states() -> dict:
    states = {
        "python": random.getstate(),
        "numpy": [torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in np.random.get_state()],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_random_states(states: dict) -> None:
    python_state = states["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    np.random.set_state(tuple(v.numpy() if isinstance(v, torch.Tensor) else v for v in states["numpy"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def reopen_csv_log(path: Path, columns: list[str], resume_step: int) -> tuple[TextIO, csv.DictWriter]:
    """``path`` opened for appending rows of ``columns``, keeping only the rows up to ``resume_step``
    (the steps after the checkpoint we resume from are redone)."""
    rows = []
    if resume_step and path.exists():
        with path.open(newline="") as f:
            rows = [row for row in csv.DictReader(f) if int(row["step"]) <= resume_step]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    file = path.open("a", newline="")
    return file, csv.DictWriter(file, columns)


class StepLog:
    """Appends one CSV row per step to ``train_log.csv``, one per dev evaluation to ``dev_log.csv``
    (and both to TensorBoard when it is installed)."""

    def __init__(self, exp_dir: Path, resume_step: int):
        self.path = exp_dir / "train_log.csv"
        self.file, self.writer = reopen_csv_log(self.path, LOG_COLUMNS, resume_step)
        self.dev_file, self.dev_writer = reopen_csv_log(exp_dir / "dev_log.csv", DEV_LOG_COLUMNS, resume_step)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(exp_dir / "tensorboard"))
        except ImportError:
            self.tensorboard = None

    def write(self, row: dict) -> None:
        self.writer.writerow(row)
        self.file.flush()
        if self.tensorboard is not None:
            for key in ("loss", "lr", "grad_norm", "audio_seconds_per_second"):
                self.tensorboard.add_scalar(f"train/{key}", row[key], row["step"])

    def dev(self, step: int, epoch: int, rates: ErrorRates) -> None:
        self.dev_writer.writerow({"step": step, "epoch": epoch, "dev_wer": rates.wer, "dev_cer": rates.cer})
        self.dev_file.flush()
        if self.tensorboard is not None:
            self.tensorboard.add_scalar("dev/wer", rates.wer, step)
            self.tensorboard.add_scalar("dev/cer", rates.cer, step)

    def close(self) -> None:
        self.file.close()
        self.dev_file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def average_model_files(paths: list[Path]) -> dict:
    """A model-file dict whose weights are the mean of ``paths``' weights (same architecture)."""
    payloads = [load_model_file(path) for path in paths]
    averaged = dict(payloads[-1])
    averaged["state_dict"] = {
        name: (sum(p["state_dict"][name].double() for p in payloads) / len(payloads)).to(tensor.dtype)
        if tensor.is_floating_point()
        else tensor
        for name, tensor in payloads[-1]["state_dict"].items()
    }
    averaged["averaged_from"] = [str(path.name) for path in paths]
    return averaged


@dataclass
class TrainState:
    """Everything a training run holds: built once by :func:`build_state`, then stepped."""

    config: Config
    vocabulary: Vocabulary
    rank: int
    world_size: int
    device: torch.device
    exp_dir: Path
    train_utterances: list[Utterance]
    train_corpora: list[int]  # each training utterance's corpus: its number in training_corpora(config)
    dev_utterances: list[Utterance]
    sampler: DurationBatchSampler
    dataset: AudioDataset
    loader: DataLoader
    frontend: LogMel
    augment: SpecAugment
    model: CTCModel
    ddp: torch.nn.Module  # the model, wrapped in DistributedDataParallel with several processes
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    use_amp: bool
    amp_dtype: torch.dtype
    batches_per_epoch: int  # of the first epoch, all ranks together: the unit of the learning-rate schedule
    anchor: list[torch.Tensor] = field(default_factory=list)  # train.init_from's weights, for train.stay_close
    progress: Progress = field(default_factory=Progress)
    step_log: StepLog | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and model files."""
        return self.rank == 0

    @property
    def checkpoint_path(self) -> Path:
        return self.exp_dir / "checkpoint.pt"

    def finished(self) -> bool:
        """Whether ``train.max_steps`` (when set) is reached."""
        return bool(self.config.train.max_steps and self.progress.step >= self.config.train.max_steps)

    def model_payload(self, extra: dict | None = None) -> dict:
        """A model file's contents for the current weights."""
        return model_payload(self.model, config_to_dict(self.config), self.vocabulary.characters, extra)


def check_run(config: Config) -> Path:
    """Refuse, before anything is built, what no training can use; return the experiment folder."""
    check_config(config)
    if config.train.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"train.device is {config.train.device!r} but no CUDA GPU is available (auto or cpu trains here)"
        )
    exp_dir = Path(config.train.exp_dir)
    if exp_dir.exists() and not exp_dir.is_dir():
        raise ValueError(f"train.exp_dir: {exp_dir} is a file, not a folder")
    return exp_dir


def training_corpora(config: Config) -> list[tuple[str, str, float]]:
    """(name, manifest, weight) of each training corpus: ``data.train_manifests``, or
    ``data.train_manifest`` alone (weight 1)."""
    data = config.data
    if not data.train_manifests:
        return [(Path(data.train_manifest).name.removesuffix(".jsonl"), data.train_manifest, 1.0)]
    return [(name, c.path, c.weight) for name, c in zip(corpus_names(data), data.train_manifests)]


def read_training_data(config: Config, vocabulary: Vocabulary) -> tuple[list[Utterance], list[int], list[Utterance]]:
    """The training utterances of every corpus (those longer than ``data.max_duration`` left
    out), each one's corpus number, and the dev utterances."""
    train_utterances, corpora = [], []
    for number, (_, path, _) in enumerate(training_corpora(config)):
        utterances = read_manifest(path, vocabulary, config.data.skip_bad)
        too_long = [u for u in utterances if u.duration > config.data.max_duration]
        if too_long:
            limit = config.data.max_duration
            log.warning("%s: skipping %d training utterance(s) longer than %.1f s", path, len(too_long), limit)
            utterances = [u for u in utterances if u.duration <= config.data.max_duration]
        if not utterances:
            raise ValueError(
                f"{path}: no training utterance is at most data.max_duration "
                f"({config.data.max_duration} s) long: nothing to train on"
            )
        train_utterances += utterances
        corpora += [number] * len(utterances)
    dev_utterances = (
        read_manifest(config.data.dev_manifest, None, config.data.skip_bad) if config.data.dev_manifest else []
    )
    return train_utterances, corpora, dev_utterances


def build_loader(
    config: Config,
    vocabulary: Vocabulary,
    utterances: list[Utterance],
    corpora: list[int],
    rank: int,
    world_size: int,
    device: torch.device,
):
    """(sampler, dataset, loader) for the training utterances: length-bucketed batches, each
    rank its share, each corpus its weighted share (with several), with the augmentations the
    config asks for."""
    data = config.data
    weighted = bool(data.train_manifests)
    sampler = DurationBatchSampler(
        [u.duration for u in utterances],
        data.max_batch_seconds,
        seed=config.train.seed,
        rank=rank,
        world_size=world_size,
        speeds=data.speed_perturbation,
        sortagrad=data.sortagrad,
        corpora=corpora if weighted else None,
        weights=[weight for _, _, weight in training_corpora(config)] if weighted else None,
    )
    noise = None
    if data.noise_dir:
        noise = NoiseMixer(
            data.noise_dir, data.noise_probability, data.noise_snr_db, config.features.sample_rate, config.train.seed
        )
    reverb = None
    if data.reverb_probability:
        reverb = Reverberator(data.reverb_probability, data.reverb_rt60, config.features.sample_rate, config.train.seed)
    dataset = AudioDataset(
        utterances,
        vocabulary,
        config.features.sample_rate,
        data.speed_perturbation,
        config.train.seed,
        noise,
        data.narrowband_probability,
        reverb,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=data.num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator(),  # keeps the loader from drawing on the global RNG (exact resume)
    )
    return sampler, dataset, loader


def build_optimizer(config: Config, model: CTCModel, device: torch.device):
    """(optimizer, grad scaler, use autocast, autocast dtype): AdamW; bf16 autocast on GPUs that
    have it, else fp16 with loss scaling; no autocast on the CPU."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    use_amp = config.train.amp and device.type == "cuda"
    amp_dtype_name = config.train.amp_dtype
    bf16 = amp_dtype_name == "bf16" or (amp_dtype_name == "auto" and use_amp and torch.cuda.is_bf16_supported())
    amp_dtype = torch.bfloat16 if bf16 else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    return optimizer, scaler, use_amp, amp_dtype


def build_state(config: Config) -> TrainState:
    """Processes, data, model and optimiser for ``config``, resumed from its checkpoint when there is one."""
    exp_dir = check_run(config)
    rank, world_size, device = setup_distributed(config.train.device)
    exp_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        for stale in remove_stale_temporaries(exp_dir):
            log.info("removed %s, left by an interrupted write", stale.name)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    seed_everything(config.train.seed + rank)  # ranks differ in dropout and SpecAugment, not in data order

    vocabulary = build_vocabulary(config)
    train_utterances, train_corpora, dev_utterances = read_training_data(config, vocabulary)
    sampler, dataset, loader = build_loader(
        config, vocabulary, train_utterances, train_corpora, rank, world_size, device
    )
    frontend = LogMel(config.features).to(device)
    augment = SpecAugment(config.specaugment, config.features).to(device)
    model = CTCModel(config.features.n_mels, len(vocabulary), config.model, config.features.utterance_mean_norm).to(
        device
    )
    freeze(model, config.train.freeze)
    optimizer, scaler, use_amp, amp_dtype = build_optimizer(config, model, device)
    state = TrainState(
        config,
        vocabulary,
        rank,
        world_size,
        device,
        exp_dir,
        train_utterances,
        train_corpora,
        dev_utterances,
        sampler,
        dataset,
        loader,
        frontend,
        augment,
        model,
        model,
        optimizer,
        scaler,
        use_amp,
        amp_dtype,
        batches_per_epoch=len(sampler.epoch_batches(0)),
    )
    if state.is_main:
        log.info(
            "model: %s x%d, hidden %d, %s parameters; %d training "
            "utterances (%.1f h), %d dev; device %s, %d process(es)",
            config.model.rnn_type,
            config.model.num_layers,
            config.model.hidden_size,
            f"{model.parameter_count():,}",
            len(train_utterances),
            sum(u.duration for u in train_utterances) / 3600,
            len(dev_utterances),
            device,
            world_size,
        )
    resume_or_start(state)
    if config.train.stay_close:
        state.anchor = anchor_weights(model, config.train.init_from)
    if world_size > 1:
        # DDP copies rank 0's weights and buffers (the normalisation statistics) to every rank.
        state.ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return state


def freeze(model: CTCModel, prefixes: list[str]) -> None:
    """Stop the parameters whose names start with one of ``prefixes`` from training; a prefix that
    names none is an error (listing the names there are)."""
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            raise ValueError(f"train.freeze: no parameter name starts with {prefix!r} (they are {', '.join(names)})")
    for name, parameter in model.named_parameters():
        if any(name.startswith(prefix) for prefix in prefixes):
            parameter.requires_grad_(False)
    if not any(parameter.requires_grad for parameter in model.parameters()):
        raise ValueError(f"train.freeze: {', '.join(prefixes)} leave no parameter to train")


def resume_or_start(state: TrainState) -> None:
    """Continue from the checkpoint in ``exp_dir`` (weights, optimiser, position, random states), or
    start afresh: weights from ``train.init_from`` if given, feature statistics from the data."""
    config, path = state.config, state.checkpoint_path
    if config.train.resume and path.exists():
        checkpoint = load_checkpoint(path)
        if checkpoint["model"]["vocabulary"] != state.vocabulary.characters:
            raise ValueError(f"{path}: its vocabulary differs from this run's; use another exp_dir")
        state.model.load_state_dict(checkpoint["model"]["state_dict"])
        state.optimizer.load_state_dict(checkpoint["optimizer"])
        state.scaler.load_state_dict(checkpoint["scaler"])
        saved = checkpoint["progress"]
        state.progress = Progress(
            **{("best_dev_score" if key == "best_wer" else key): value for key, value in saved.items()}
        )
        if checkpoint.get("world_size", 1) == state.world_size:
            _set_random_states(
                checkpoint["random_states"][state.rank] if state.world_size > 1 else checkpoint["random_states"]
            )
        if state.is_main:
            p = state.progress
            log.info(
                "resumed from %s at step %d (epoch %d, batch %d of %d)",
                path,
                p.step,
                p.epoch,
                p.batch_in_epoch,
                state.batches_per_epoch,
            )
        return
    if config.train.init_from:
        init_weights(state.model, config.train.init_from, state.vocabulary)
        if state.is_main:
            log.info("weights from %s", config.train.init_from)
    if state.is_main and (config.train.renormalize or not config.train.init_from):
        # (re-)estimated on this run's data, so that its features are normalised as the weights expect
        # from the first epoch's draws: with several corpora, mixed as their weights say
        drawn = [state.train_utterances[i % len(state.train_utterances)] for i in state.sampler.epoch_utterances(0)]
        estimate_normalization(state.model, state.frontend, drawn, config, state.device)


def set_learning_rate(state: TrainState) -> float:
    """Set and return the learning rate of the current position. The schedule follows batches
    consumed by all ranks, so it is the same for any number of ranks."""
    config, progress = state.config, state.progress
    batches = state.batches_per_epoch
    consumed = progress.epoch * batches + progress.batch_in_epoch
    lr = config.train.lr * lr_factor(
        consumed, config.train.warmup_steps, config.train.epochs * batches, config.train.min_lr_ratio
    )
    for group in state.optimizer.param_groups:
        group["lr"] = lr
    return lr


def save_checkpoint(state: TrainState) -> None:
    """Write everything needed to resume exactly (every rank's random states), atomically."""
    states = _random_states()
    if state.world_size > 1:
        states = gather_tensors(states, state.world_size)
    if state.is_main:
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "model": state.model_payload(),
            "optimizer": state.optimizer.state_dict(),
            "scaler": state.scaler.state_dict(),
            "progress": vars(state.progress).copy(),
            "world_size": state.world_size,
            "random_states": states,
        }
        atomic_save(checkpoint, state.checkpoint_path)


def train_step(state: TrainState, group: list[tuple[Batch, bool]]) -> dict:
    """One optimiser step over ``group`` (``train.accumulate_batches`` batches, each with whether it
    is real: a rank's padding batch gets zero weight). Returns the step's figures for the log.

    Each utterance's loss per target character is averaged over the utterances of the whole step
    (all its batches, all ranks; DDP averages over ranks): every utterance weighs the same."""
    world_size, device = state.world_size, state.device
    utterances = sum_over_ranks(torch.tensor(float(sum(len(b.indices) for b, real in group if real))), world_size)
    figures = {"feature_seconds": 0.0, "loss_sum": 0.0, "audio_seconds": 0.0, "padded": 0.0, "samples": 0.0}
    state.optimizer.zero_grad(set_to_none=True)
    for micro, (batch, real) in enumerate(group):
        if not batch.indices:  # every file of it unreadable (skipped): nothing to learn from
            continue
        batch = batch.to(device)
        feature_tick = time.perf_counter()
        features, lengths = state.frontend(batch.waveforms, batch.sample_counts)
        if device.type == "cuda":
            torch.cuda.synchronize()
        figures["feature_seconds"] += time.perf_counter() - feature_tick
        sync = micro == len(group) - 1  # all-reduce gradients once per step
        with contextlib.nullcontext() if sync or world_size == 1 else state.ddp.no_sync():
            with torch.autocast(device.type, dtype=state.amp_dtype, enabled=state.use_amp):
                logits, out_lengths = state.ddp(features, lengths, state.augment)
            loss = CTCModel.ctc_loss(
                logits, out_lengths, batch.targets, batch.target_lengths, state.vocabulary.blank_id
            ).sum()
            weight = world_size / utterances.clamp_min(1).item() if real else 0.0
            state.scaler.scale(loss * weight).backward()
        if real:
            figures["loss_sum"] += loss.item()
            figures["audio_seconds"] += batch.sample_counts.sum().item() / state.config.features.sample_rate
            figures["samples"] += batch.waveforms.numel()
            figures["padded"] += batch.waveforms.numel() - batch.sample_counts.sum().item()
    state.scaler.unscale_(state.optimizer)
    pull_towards_anchor(state)
    figures["grad_norm"] = torch.nn.utils.clip_grad_norm_(state.model.parameters(), state.config.train.grad_clip).item()
    state.scaler.step(state.optimizer)
    state.scaler.update()
    return figures


def anchor_weights(model: CTCModel, path: str) -> list[torch.Tensor]:
    """The parameters of ``model`` with the weights of model file ``path`` (``train.init_from``),
    in ``model.parameters()`` order: what ``train.stay_close`` pulls towards, on resuming too."""
    start = copy.deepcopy(model)
    start.load_state_dict(load_model_file(path)["state_dict"])
    return [p.detach().clone() for p in start.parameters()]


def pull_towards_anchor(state: TrainState) -> None:
    """With ``train.stay_close``: add the gradient of stay_close * |w - w0|^2 (w0: the weights of
    ``train.init_from``), so that fine-tuning on a little data moves the weights no further from
    the model it started from than the data is worth (L2-SP)."""
    strength = state.config.train.stay_close
    if not strength:
        return
    for parameter, start in zip(state.model.parameters(), state.anchor):
        if parameter.grad is not None:
            parameter.grad.add_(parameter.detach() - start, alpha=2 * strength)


class TrainingDiverged(ValueError):
    """The loss or the weights stopped being finite: training stops before it writes anything more."""


def stop_if_diverged(state: TrainState, loss_sum: float, lr: float) -> None:
    """Raise :class:`TrainingDiverged` when the step just taken left a NaN loss or weights that are
    not finite: a model file of such weights would transcribe everything as nothing. Every rank
    sees the same weights after a step, so every rank stops."""
    if math.isfinite(loss_sum) and all(torch.isfinite(p).all() for p in state.model.parameters()):
        return
    raise TrainingDiverged(
        f"{state.exp_dir}: training diverged at step {state.progress.step + 1} (the loss or the weights are no "
        f"longer finite; learning rate {lr:.3g}): stopped, no model written; the last checkpoint is from before"
    )


def corpus_seconds(state: TrainState, group: list[tuple[Batch, bool]]) -> str:
    """``"name=seconds ..."``: how much audio of each training corpus the real batches of ``group``
    held (empty unless ``data.train_manifests`` names the corpora)."""
    if not state.config.data.train_manifests:
        return ""
    names = [name for name, _, _ in training_corpora(state.config)]
    seconds = dict.fromkeys(names, 0.0)
    rate, size = state.config.features.sample_rate, len(state.train_utterances)
    for batch, real in group:
        for index, count in zip(batch.indices, batch.sample_counts.tolist()):
            if real:
                seconds[names[state.train_corpora[index % size]]] += count / rate
    return " ".join(f"{name}={value:.2f}" for name, value in seconds.items())


def log_epoch_corpora(state: TrainState) -> None:
    """Log how much audio of each corpus the current epoch draws (all ranks together)."""
    if not (state.config.data.train_manifests and state.is_main):
        return
    size = len(state.train_utterances)
    draws = state.sampler.epoch_utterances(state.progress.epoch)
    parts = []
    for number, (name, _, _) in enumerate(training_corpora(state.config)):
        mine = [i for i in draws if state.train_corpora[i % size] == number]
        minutes = sum(state.train_utterances[i % size].duration for i in mine) / 60
        distinct = len({i % size for i in mine})
        parts.append(f"{name} {minutes:.1f} min ({len(mine)} draws of {distinct} utterances)")
    log.info("epoch %d draws: %s", state.progress.epoch + 1, "; ".join(parts))


def log_row(
    state: TrainState, lr: float, figures: dict, utterances: int, data_seconds: float, step_seconds: float
) -> dict:
    """The ``train_log.csv`` row of the step just taken."""
    return {
        "step": state.progress.step,
        "epoch": state.progress.epoch,
        "loss": round(figures["loss_sum"] / max(1, utterances), 5),
        "lr": f"{lr:.3e}",
        "grad_norm": round(figures["grad_norm"], 4),
        "utterances": utterances,
        "audio_seconds": round(figures["audio_seconds"], 3),
        "padded_fraction": round(figures["padded"] / max(1.0, figures["samples"]), 4),
        "data_seconds": round(data_seconds, 4),
        "feature_seconds": round(figures["feature_seconds"], 4),
        "step_seconds": round(step_seconds, 4),
        "audio_seconds_per_second": round(figures["audio_seconds"] / step_seconds, 2),
        "corpus_audio_seconds": figures["corpus_audio_seconds"],
    }


def train_one_epoch(state: TrainState, observer: Observer | None) -> bool:
    """Train from the current position to the end of the epoch (or to ``train.max_steps``);
    return whether the epoch was completed."""
    config, progress, sampler = state.config, state.progress, state.sampler
    accumulate = config.train.accumulate_batches
    sampler.epoch, sampler.start_batch = progress.epoch, progress.batch_in_epoch
    state.dataset.epoch = progress.epoch  # before the loader copies the dataset into its workers
    real_batches, served = sampler.real_batches, len(sampler)
    epoch_batches = len(sampler.epoch_batches(progress.epoch))  # varies a little from epoch to epoch
    if progress.batch_in_epoch == 0:
        log_epoch_corpora(state)
    state.model.train()
    bar = tqdm(
        total=-(-served // accumulate),
        desc=f"epoch {progress.epoch + 1}/{config.train.epochs}",
        unit="step",
        disable=not state.is_main,
    )
    tick = time.perf_counter()
    group: list[tuple[Batch, bool]] = []
    for number, batch in enumerate(state.loader):
        usable(batch, config.data.skip_bad)  # unreadable files: an error, or left out with data.skip_bad
        group.append((batch, number < real_batches))  # padding batches (uneven ranks) get zero weight
        if len(group) < accumulate and number < served - 1:
            continue
        data_seconds = time.perf_counter() - tick
        lr = set_learning_rate(state)
        figures = train_step(state, group)
        stop_if_diverged(state, figures["loss_sum"], lr)
        figures["corpus_audio_seconds"] = corpus_seconds(state, group)
        progress.step += 1
        progress.batch_in_epoch = min(progress.batch_in_epoch + len(group) * state.world_size, epoch_batches)
        real_indices = [i for b, real in group if real for i in b.indices]
        if observer is not None:
            observer(progress, real_indices, state.model)
        if state.step_log is not None:
            row = log_row(state, lr, figures, len(real_indices), data_seconds, time.perf_counter() - tick)
            state.step_log.write(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", lr=row["lr"], audio_s_per_s=row["audio_seconds_per_second"])
        bar.update()
        group = []
        if progress.step % config.train.checkpoint_every == 0 or state.finished():
            save_checkpoint(state)
        if state.finished():
            break
        tick = time.perf_counter()
    bar.close()
    return progress.batch_in_epoch >= epoch_batches


@torch.no_grad()
def dev_error_rates(state: TrainState) -> ErrorRates:
    """Greedy WER and CER of the current weights on the dev utterances."""
    state.model.eval()
    hypotheses = [""] * len(state.dev_utterances)
    batches = ordered_batches(
        state.dev_utterances,
        state.config.features.sample_rate,
        state.config.data.max_batch_seconds,
        state.config.data.num_workers,
    )
    for batch in tqdm(batches, desc="dev", unit="batch", leave=False, disable=not state.is_main):
        usable(batch, skip_bad=False)  # a file that cannot be read would change the score: stop there
        features, lengths = state.frontend(batch.waveforms.to(state.device), batch.sample_counts.to(state.device))
        logits, out_lengths = state.model(features, lengths)
        for index, text in zip(
            batch.indices, greedy_decode(logits.float().log_softmax(-1), out_lengths, state.vocabulary)
        ):
            hypotheses[index] = text
    state.model.train()
    return error_rates([u.text for u in state.dev_utterances], hypotheses)


def end_of_epoch(state: TrainState) -> bool:
    """After a completed epoch: the epoch model (for averaging), dev WER and CER, the best model so
    far, early stopping (all ranks agree), a checkpoint. Returns whether to stop early."""
    config, progress = state.config, state.progress
    progress.epoch += 1
    progress.batch_in_epoch = 0
    if state.is_main and config.train.average_last > 1:
        atomic_save(state.model_payload(), state.exp_dir / f"epoch-{progress.epoch}.pt")
        (state.exp_dir / f"epoch-{progress.epoch - config.train.average_last}.pt").unlink(missing_ok=True)
    stop_early = False
    if state.dev_utterances and progress.epoch % config.train.eval_every_epochs == 0:
        if state.is_main:
            rates = dev_error_rates(state)
            log.info("epoch %d step %d: dev %s", progress.epoch, progress.step, rates)
            state.step_log.dev(progress.step, progress.epoch, rates)
            score = getattr(rates, config.train.best_metric)
            if score < progress.best_dev_score:
                progress.best_dev_score, progress.evaluations_since_best = score, 0
                atomic_save(
                    state.model_payload({"dev_wer": rates.wer, "dev_cer": rates.cer}), state.exp_dir / "best.pt"
                )
            else:
                progress.evaluations_since_best += 1
            patience = config.train.early_stopping_patience
            stop_early = bool(patience and progress.evaluations_since_best >= patience)
            if stop_early:
                log.info(
                    "early stopping: no better dev %s in %d evaluations", config.train.best_metric.upper(), patience
                )
        flags = broadcast_values(
            [stop_early, progress.best_dev_score, progress.evaluations_since_best], state.world_size
        )
        stop_early, progress.best_dev_score, progress.evaluations_since_best = flags
    save_checkpoint(state)
    return stop_early


def write_final_model(state: TrainState) -> Path:
    """model.pt: the average of the last k epoch models when that is no worse on dev than the
    best single epoch, else the best epoch on dev (``train.best_metric``), else (no dev set) the last weights."""
    config, exp_dir, progress = state.config, state.exp_dir, state.progress
    final = exp_dir / "model.pt"
    metric = config.train.best_metric
    epoch_files = sorted(exp_dir.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))[
        -config.train.average_last :
    ]
    if config.train.average_last > 1 and len(epoch_files) > 1:
        averaged = average_model_files(epoch_files)
        if state.dev_utterances:
            state.model.load_state_dict(averaged["state_dict"])
            rates = dev_error_rates(state)
            averaged["dev_wer"], averaged["dev_cer"] = rates.wer, rates.cer
            log.info(
                "average of %s: dev %s (best single epoch: %s %.2f%%)",
                ", ".join(averaged["averaged_from"]),
                rates,
                metric.upper(),
                100 * progress.best_dev_score,
            )
        if not state.dev_utterances or getattr(rates, metric) <= progress.best_dev_score:
            atomic_save(averaged, final)
            log.info("model written to %s (average of the last %d epochs)", final, len(epoch_files))
            return final
    if (exp_dir / "best.pt").exists():
        with open(exp_dir / "best.pt", "rb") as best, atomic_write(final) as out:
            shutil.copyfileobj(best, out)
    else:
        atomic_save(state.model_payload(), final)
    if state.dev_utterances:
        log.info("model written to %s (best dev %s %.2f%%)", final, metric.upper(), 100 * progress.best_dev_score)
    else:
        log.info("model written to %s (the last weights: no dev set)", final)
    return final


def train(config: Config, observer: Observer | None = None) -> Path:
    """Train the model ``config`` describes; return the path of the final model file (``exp_dir/model.pt``).

    Under ``torchrun`` each process trains on its share of every epoch's batches (DDP); rank 0
    alone writes checkpoints, logs and model files. ``observer(progress, utterance_indices, model)``,
    when given, is called after every optimiser step with the utterances that step used on this rank.
    """
    state = build_state(config)
    state.step_log = StepLog(state.exp_dir, state.progress.step) if state.is_main else None
    try:
        while state.progress.epoch < config.train.epochs and not state.finished():
            if not train_one_epoch(state, observer):
                break  # stopped mid-epoch by max_steps
            if end_of_epoch(state):
                break  # early stopping
    finally:
        if state.step_log is not None:
            state.step_log.close()
    if state.is_main:
        write_final_model(state)
    wait_for_all(state.world_size)
    return state.exp_dir / "model.pt"
