"""The training loop, top to bottom: data, model, optimiser, then steps with checkpoints and dev WER.

Run it with ``asr train CONFIG.yaml [section.key=value ...]``. Rerunning the same command after
an interruption resumes exactly where the last checkpoint left off.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from .checkpoint import CHECKPOINT_FORMAT, MODEL_FORMAT_VERSION, atomic_save, load_checkpoint, load_model_file, model_payload, remove_stale_temporaries
from .config import Config, check_config, config_to_dict
from .data import AudioDataset, DurationBatchSampler, NoiseMixer, Utterance, collate, read_manifest, usable
from .evaluate import decode_utterances
from .features import LogMel, SpecAugment, padding_mask
from .metrics import error_rates
from .model import CTCModel
from .recognizer import Recognizer, pick_device
from .text import Vocabulary

log = logging.getLogger(__name__)

LOG_COLUMNS = [
    "step", "epoch", "loss", "lr", "grad_norm", "utterances", "audio_seconds", "padded_fraction",
    "data_seconds", "feature_seconds", "step_seconds", "audio_seconds_per_second",
]


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
        texts = [u.text for u in read_manifest(config.data.train_manifest, None, config.data.skip_bad)]
        vocabulary = Vocabulary.from_texts(texts)
        extra = vocabulary.characters[len(Vocabulary().characters):]
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
        raise ValueError(f"{path}: train.init_from does not fit this run's model config: {str(error).splitlines()[0]}") from None


@torch.no_grad()
def estimate_normalization(model: CTCModel, frontend: LogMel, utterances: list[Utterance], config: Config, device: torch.device) -> None:
    """Set the model's feature mean/variance from (a seeded sample of) the training utterances."""
    rng = random.Random(config.train.seed)
    sample = utterances if len(utterances) <= config.data.normalization_utterances else rng.sample(utterances, config.data.normalization_utterances)
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


class StepLog:
    """Appends one CSV row per step (and to TensorBoard when it is installed)."""

    def __init__(self, exp_dir: Path, resume_step: int):
        self.path = exp_dir / "train_log.csv"
        rows = []
        if resume_step and self.path.exists():
            # drop rows written after the checkpoint we resume from: those steps are redone
            with self.path.open(newline="") as f:
                rows = [row for row in csv.DictReader(f) if int(row["step"]) <= resume_step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, LOG_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        self.file = self.path.open("a", newline="")
        self.writer = csv.DictWriter(self.file, LOG_COLUMNS)
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

    def scalar(self, name: str, value: float, step: int) -> None:
        if self.tensorboard is not None:
            self.tensorboard.add_scalar(name, value, step)

    def close(self) -> None:
        self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def setup_distributed(config: Config) -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under ``torchrun`` (WORLD_SIZE > 1) joins the process group:
    NCCL with one GPU per process when CUDA is there, else gloo on the CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, pick_device(config.train.device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and config.train.device in ("auto", "cuda")
    if use_cuda and local_rank >= torch.cuda.device_count():
        raise RuntimeError(
            f"process {local_rank} of this machine needs GPU cuda:{local_rank}, but {torch.cuda.device_count()} "
            "GPU(s) are visible: start at most one process per GPU, or set train.device=cpu"
        )
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), world_size, torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")


def average_model_files(paths: list[Path]) -> dict:
    """A model-file dict whose weights are the mean of ``paths``' weights (same architecture)."""
    payloads = [load_model_file(path) for path in paths]
    averaged = dict(payloads[-1])
    averaged["state_dict"] = {
        name: (sum(p["state_dict"][name].double() for p in payloads) / len(payloads)).to(tensor.dtype)
        if tensor.is_floating_point() else tensor
        for name, tensor in payloads[-1]["state_dict"].items()
    }
    averaged["averaged_from"] = [str(path.name) for path in paths]
    return averaged


def train(config: Config, observer: Callable[[Progress, list[int], torch.nn.Module], None] | None = None) -> Path:
    """Train the model ``config`` describes; return the path of the final model file (``exp_dir/model.pt``).

    Under ``torchrun`` each process trains on its share of every epoch's batches (DDP); rank 0
    alone writes checkpoints, logs and model files. ``observer(progress, utterance_indices, model)``,
    when given, is called after every optimiser step with the utterances that step used on this rank.
    """
    check_config(config)
    if config.train.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"train.device is {config.train.device!r} but no CUDA GPU is available (auto or cpu trains here)")
    exp_dir = Path(config.train.exp_dir)
    if exp_dir.exists() and not exp_dir.is_dir():
        raise ValueError(f"train.exp_dir: {exp_dir} is a file, not a folder")
    rank, world_size, device = setup_distributed(config)
    is_main = rank == 0
    exp_dir.mkdir(parents=True, exist_ok=True)
    if is_main:
        for stale in remove_stale_temporaries(exp_dir):
            log.info("removed %s, left by an interrupted write", stale.name)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    seed_everything(config.train.seed + rank)  # ranks differ in dropout and SpecAugment, not in data order

    # --- data ---
    vocabulary = build_vocabulary(config)
    train_utterances = read_manifest(config.data.train_manifest, vocabulary, config.data.skip_bad)
    too_long = [u for u in train_utterances if u.duration > config.data.max_duration]
    if too_long:
        log.warning("skipping %d training utterance(s) longer than %.1f s", len(too_long), config.data.max_duration)
        train_utterances = [u for u in train_utterances if u.duration <= config.data.max_duration]
    if not train_utterances:
        raise ValueError(f"{config.data.train_manifest}: no training utterance is at most data.max_duration ({config.data.max_duration} s) long: nothing to train on")
    dev_utterances = read_manifest(config.data.dev_manifest, None, config.data.skip_bad) if config.data.dev_manifest else []
    sampler = DurationBatchSampler(
        [u.duration for u in train_utterances], config.data.max_batch_seconds, seed=config.train.seed,
        rank=rank, world_size=world_size, speeds=config.data.speed_perturbation,
    )
    noise = None
    if config.data.noise_dir:
        noise = NoiseMixer(config.data.noise_dir, config.data.noise_probability, config.data.noise_snr_db, config.features.sample_rate, config.train.seed)
    dataset = AudioDataset(train_utterances, vocabulary, config.features.sample_rate, config.data.speed_perturbation, config.train.seed, noise,
                           config.data.narrowband_probability)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=config.data.num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator(),  # keeps the loader from drawing on the global RNG (exact resume)
    )
    batches_per_epoch = len(sampler.epoch_batches(0))  # for the learning-rate schedule
    accumulate = max(1, config.train.accumulate_batches)

    # --- model and optimiser ---
    frontend = LogMel(config.features).to(device)
    augment = SpecAugment(config.specaugment).to(device)
    model = CTCModel(config.features.n_mels, len(vocabulary), config.model, config.features.utterance_mean_norm).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    use_amp = config.train.amp and device.type == "cuda"
    bf16 = config.train.amp_dtype == "bf16" or (config.train.amp_dtype == "auto" and use_amp and torch.cuda.is_bf16_supported())
    amp_dtype = torch.bfloat16 if bf16 else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    ctc_loss = torch.nn.CTCLoss(blank=vocabulary.blank_id, zero_infinity=True, reduction="none")
    config_dict = config_to_dict(config)
    if is_main:
        log.info(
            "model: %s x%d, hidden %d, %s parameters; %d training utterances (%.1f h), %d dev; device %s, %d process(es)",
            config.model.rnn_type, config.model.num_layers, config.model.hidden_size, f"{model.parameter_count():,}",
            len(train_utterances), sum(u.duration for u in train_utterances) / 3600, len(dev_utterances), device, world_size,
        )

    # --- resume, or start afresh ---
    checkpoint_path = exp_dir / "checkpoint.pt"
    progress = Progress()
    if config.train.resume and checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path)
        if checkpoint["model"]["vocabulary"] != vocabulary.characters:
            raise ValueError(f"{checkpoint_path}: its vocabulary differs from this run's; use another exp_dir")
        model.load_state_dict(checkpoint["model"]["state_dict"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        saved = checkpoint["progress"]
        progress = Progress(**{("best_dev_score" if key == "best_wer" else key): value for key, value in saved.items()})
        if checkpoint.get("world_size", 1) == world_size:
            _set_random_states(checkpoint["random_states"][rank] if world_size > 1 else checkpoint["random_states"])
        if is_main:
            log.info("resumed from %s at step %d (epoch %d, batch %d of %d)", checkpoint_path, progress.step, progress.epoch, progress.batch_in_epoch, batches_per_epoch)
    else:
        if config.train.init_from:
            init_weights(model, config.train.init_from, vocabulary)
            if is_main:
                log.info("weights from %s", config.train.init_from)
        if is_main:  # (re-)estimated on this run's data, so that its features are normalised as the weights expect
            estimate_normalization(model, frontend, train_utterances, config, device)
    if world_size > 1:
        # DDP copies rank 0's weights and buffers (the normalisation statistics) to every rank.
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        ddp = model

    def set_learning_rate() -> float:
        # The schedule follows batches consumed by all ranks, so it is the same for any number of ranks.
        consumed = progress.epoch * batches_per_epoch + progress.batch_in_epoch
        lr = config.train.lr * lr_factor(consumed, config.train.warmup_steps, config.train.epochs * batches_per_epoch, config.train.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def save_checkpoint() -> None:
        states = _random_states()
        if world_size > 1:  # every rank's states, sent as bytes (tensors do not pickle across gloo)
            buffer = io.BytesIO()
            torch.save(states, buffer)
            gathered: list = [None] * world_size
            dist.all_gather_object(gathered, buffer.getvalue())
            states = [torch.load(io.BytesIO(b), weights_only=True) for b in gathered]
        if is_main:
            atomic_save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "format_version": MODEL_FORMAT_VERSION,
                    "model": model_payload(model, config_dict, vocabulary.characters),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "progress": vars(progress).copy(),
                    "world_size": world_size,
                    "random_states": states,
                },
                checkpoint_path,
            )

    step_log = StepLog(exp_dir, progress.step) if is_main else None
    finished = lambda: config.train.max_steps and progress.step >= config.train.max_steps  # noqa: E731
    stop_early = False
    try:
        while progress.epoch < config.train.epochs and not finished() and not stop_early:
            # --- one epoch of steps ---
            sampler.epoch, sampler.start_batch = progress.epoch, progress.batch_in_epoch
            dataset.epoch = progress.epoch  # before the loader copies the dataset into its workers
            real_batches, served = sampler.real_batches, len(sampler)
            epoch_batches = len(sampler.epoch_batches(progress.epoch))  # varies a little from epoch to epoch
            model.train()
            bar = tqdm(total=-(-served // accumulate), desc=f"epoch {progress.epoch + 1}/{config.train.epochs}", unit="step", disable=not is_main)
            tick = time.perf_counter()
            group: list = []
            for number, batch in enumerate(loader):
                usable(batch, config.data.skip_bad)  # unreadable files: an error, or left out with data.skip_bad
                group.append((batch, number < real_batches))  # padding batches (uneven ranks) get zero weight
                if len(group) < accumulate and number < served - 1:
                    continue
                data_seconds = time.perf_counter() - tick
                lr = set_learning_rate()
                # Each utterance's loss per target character, averaged over the utterances of the whole
                # step (all its batches, all ranks; DDP averages over ranks): every utterance weighs the same.
                utterances = torch.tensor(float(sum(len(b.indices) for b, real in group if real)))
                if world_size > 1:
                    dist.all_reduce(utterances)
                feature_seconds = loss_sum = audio_seconds = padded = samples = 0.0
                optimizer.zero_grad(set_to_none=True)
                for micro, (batch, real) in enumerate(group):
                    if not batch.indices:  # every file of it unreadable (skipped): nothing to learn from
                        continue
                    batch = batch.to(device)
                    feature_tick = time.perf_counter()
                    features, lengths = frontend(batch.waveforms, batch.sample_counts)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    feature_seconds += time.perf_counter() - feature_tick
                    sync = micro == len(group) - 1  # all-reduce gradients once per step
                    with (contextlib.nullcontext() if sync or world_size == 1 else ddp.no_sync()):
                        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                            logits, out_lengths = ddp(features, lengths, augment)
                        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # CTC wants (frames, batch, vocab)
                        losses = ctc_loss(log_probs, batch.targets, out_lengths.cpu(), batch.target_lengths)
                        loss = (losses / batch.target_lengths.to(losses.device).clamp_min(1)).sum()
                        weight = world_size / utterances.clamp_min(1).item() if real else 0.0
                        scaler.scale(loss * weight).backward()
                    if real:
                        loss_sum += loss.item()
                        audio_seconds += batch.sample_counts.sum().item() / config.features.sample_rate
                        samples += batch.waveforms.numel()
                        padded += batch.waveforms.numel() - batch.sample_counts.sum().item()
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                progress.step += 1
                progress.batch_in_epoch = min(progress.batch_in_epoch + len(group) * world_size, epoch_batches)
                real_indices = [i for b, real in group if real for i in b.indices]
                if observer is not None:
                    observer(progress, real_indices, model)

                step_seconds = time.perf_counter() - tick
                if is_main:
                    row = {
                        "step": progress.step,
                        "epoch": progress.epoch,
                        "loss": round(loss_sum / max(1, len(real_indices)), 5),
                        "lr": f"{lr:.3e}",
                        "grad_norm": round(grad_norm.item(), 4),
                        "utterances": len(real_indices),
                        "audio_seconds": round(audio_seconds, 3),
                        "padded_fraction": round(padded / max(1.0, samples), 4),
                        "data_seconds": round(data_seconds, 4),
                        "feature_seconds": round(feature_seconds, 4),
                        "step_seconds": round(step_seconds, 4),
                        "audio_seconds_per_second": round(audio_seconds / step_seconds, 2),
                    }
                    step_log.write(row)
                    bar.set_postfix(loss=f"{row['loss']:.3f}", lr=row["lr"], audio_s_per_s=row["audio_seconds_per_second"])
                bar.update()
                group = []
                if progress.step % config.train.checkpoint_every == 0 or finished():
                    save_checkpoint()
                if finished():
                    break
                tick = time.perf_counter()
            bar.close()
            if progress.batch_in_epoch < epoch_batches:
                break  # stopped mid-epoch by max_steps

            # --- end of epoch: dev WER, best model, epoch model, early stopping, checkpoint ---
            progress.epoch += 1
            progress.batch_in_epoch = 0
            if is_main and config.train.average_last > 1:
                atomic_save(model_payload(model, config_dict, vocabulary.characters), exp_dir / f"epoch-{progress.epoch}.pt")
                stale = exp_dir / f"epoch-{progress.epoch - config.train.average_last}.pt"
                stale.unlink(missing_ok=True)
            if dev_utterances and progress.epoch % config.train.eval_every_epochs == 0:
                if is_main:
                    rates = _dev_error_rates(config, vocabulary, model, device, dev_utterances)
                    log.info("epoch %d step %d: dev %s", progress.epoch, progress.step, rates)
                    step_log.scalar("dev/wer", rates.wer, progress.step)
                    score = getattr(rates, config.train.best_metric)
                    if score < progress.best_dev_score:
                        progress.best_dev_score, progress.evaluations_since_best = score, 0
                        atomic_save(model_payload(model, config_dict, vocabulary.characters, {"dev_wer": rates.wer, "dev_cer": rates.cer}), exp_dir / "best.pt")
                    else:
                        progress.evaluations_since_best += 1
                    patience = config.train.early_stopping_patience
                    stop_early = bool(patience and progress.evaluations_since_best >= patience)
                    if stop_early:
                        log.info("early stopping: no better dev %s in %d evaluations", config.train.best_metric.upper(), patience)
                if world_size > 1:
                    flags = [stop_early, progress.best_dev_score, progress.evaluations_since_best]
                    dist.broadcast_object_list(flags, src=0)
                    stop_early, progress.best_dev_score, progress.evaluations_since_best = flags
            save_checkpoint()
    finally:
        if step_log is not None:
            step_log.close()

    final = exp_dir / "model.pt"
    if is_main:
        _write_final_model(config, vocabulary, model, device, dev_utterances, exp_dir, progress)
    if world_size > 1:
        dist.barrier()
    return final


def _dev_error_rates(config: Config, vocabulary: Vocabulary, model: CTCModel, device: torch.device, dev_utterances: list[Utterance]):
    recognizer = Recognizer(config, vocabulary, model, device)
    hypotheses = decode_utterances(recognizer, dev_utterances, config.data.max_batch_seconds, config.data.num_workers)
    model.train()
    return error_rates([u.text for u in dev_utterances], hypotheses)


def _write_final_model(config: Config, vocabulary: Vocabulary, model: CTCModel, device: torch.device, dev_utterances: list[Utterance], exp_dir: Path, progress: Progress) -> None:
    """model.pt: the average of the last k epoch models when that is no worse on dev than the
    best single epoch, else the best epoch on dev (``train.best_metric``), else (no dev set) the last weights."""
    final = exp_dir / "model.pt"
    epoch_files = sorted(exp_dir.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))[-config.train.average_last :]
    if config.train.average_last > 1 and len(epoch_files) > 1:
        averaged = average_model_files(epoch_files)
        if dev_utterances:
            model.load_state_dict(averaged["state_dict"])
            rates = _dev_error_rates(config, vocabulary, model, device, dev_utterances)
            averaged["dev_wer"], averaged["dev_cer"] = rates.wer, rates.cer
            metric = config.train.best_metric
            log.info("average of %s: dev %s (best single epoch: %s %.2f%%)", ", ".join(averaged["averaged_from"]), rates, metric.upper(), 100 * progress.best_dev_score)
        if not dev_utterances or getattr(rates, config.train.best_metric) <= progress.best_dev_score:
            atomic_save(averaged, final)
            log.info("model written to %s (average of the last %d epochs)", final, len(epoch_files))
            return
    if (exp_dir / "best.pt").exists():
        shutil.copyfile(exp_dir / "best.pt", exp_dir / ".model.pt.tmp")
        os.replace(exp_dir / ".model.pt.tmp", final)
    else:
        atomic_save(model_payload(model, config_to_dict(config), vocabulary.characters), final)
    if dev_utterances:
        log.info("model written to %s (best dev %s %.2f%%)", final, config.train.best_metric.upper(), 100 * progress.best_dev_score)
    else:
        log.info("model written to %s (the last weights: no dev set)", final)
