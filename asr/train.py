"""The training loop, top to bottom: data, model, optimiser, then steps with checkpoints and dev WER.

Run it with ``asr train CONFIG.yaml [section.key=value ...]``. Rerunning the same command after
an interruption resumes exactly where the last checkpoint left off.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .checkpoint import CHECKPOINT_FORMAT, MODEL_FORMAT_VERSION, atomic_save, load_checkpoint, model_payload
from .config import Config, config_to_dict
from .data import AudioDataset, DurationBatchSampler, Utterance, collate, read_manifest
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
    best_wer: float = math.inf


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


def train(config: Config) -> Path:
    """Train the model ``config`` describes; return the path of the final model file (``exp_dir/model.pt``)."""
    exp_dir = Path(config.train.exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(config.train.device)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    seed_everything(config.train.seed)

    # --- data ---
    vocabulary = build_vocabulary(config)
    train_utterances = read_manifest(config.data.train_manifest, vocabulary, config.data.skip_bad)
    too_long = [u for u in train_utterances if u.duration > config.data.max_duration]
    if too_long:
        log.warning("skipping %d training utterance(s) longer than %.1f s", len(too_long), config.data.max_duration)
        train_utterances = [u for u in train_utterances if u.duration <= config.data.max_duration]
    dev_utterances = read_manifest(config.data.dev_manifest, None, config.data.skip_bad) if config.data.dev_manifest else []
    sampler = DurationBatchSampler(
        [u.duration for u in train_utterances], config.data.max_batch_seconds, seed=config.train.seed, speeds=config.data.speed_perturbation
    )
    dataset = AudioDataset(train_utterances, vocabulary, config.features.sample_rate, config.data.speed_perturbation, config.train.seed)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=config.data.num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator(),  # keeps the loader from drawing on the global RNG (exact resume)
    )

    # --- model and optimiser ---
    frontend = LogMel(config.features).to(device)
    augment = SpecAugment(config.specaugment).to(device)
    model = CTCModel(config.features.n_mels, len(vocabulary), config.model, config.features.utterance_mean_norm).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    # The schedule spans all epochs; max_steps only stops early, so a resumed run follows the same curve.
    total_steps = config.train.epochs * len(sampler.epoch_batches(0))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, config.train.warmup_steps, total_steps, config.train.min_lr_ratio)
    )
    use_amp = config.train.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    ctc_loss = torch.nn.CTCLoss(blank=vocabulary.blank_id, zero_infinity=True)
    config_dict = config_to_dict(config)
    log.info(
        "model: %s x%d, hidden %d, %s parameters; %d training utterances (%.1f h), %d dev; device %s",
        config.model.rnn_type, config.model.num_layers, config.model.hidden_size, f"{model.parameter_count():,}",
        len(train_utterances), sum(u.duration for u in train_utterances) / 3600, len(dev_utterances), device,
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
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        progress = Progress(**checkpoint["progress"])
        _set_random_states(checkpoint["random_states"])
        log.info("resumed from %s at step %d (epoch %d, batch %d)", checkpoint_path, progress.step, progress.epoch, progress.batch_in_epoch)
    else:
        estimate_normalization(model, frontend, train_utterances, config, device)

    def save_checkpoint() -> None:
        atomic_save(
            {
                "format": CHECKPOINT_FORMAT,
                "format_version": MODEL_FORMAT_VERSION,
                "model": model_payload(model, config_dict, vocabulary.characters),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "progress": vars(progress).copy(),
                "random_states": _random_states(),
            },
            checkpoint_path,
        )

    step_log = StepLog(exp_dir, progress.step)
    finished = lambda: config.train.max_steps and progress.step >= config.train.max_steps  # noqa: E731
    try:
        while progress.epoch < config.train.epochs and not finished():
            # --- one epoch of steps ---
            sampler.epoch, sampler.start_batch = progress.epoch, progress.batch_in_epoch
            dataset.epoch = progress.epoch  # before the loader copies the dataset into its workers
            model.train()
            batches_this_epoch = sampler.start_batch + len(sampler)
            bar = tqdm(total=len(sampler), desc=f"epoch {progress.epoch + 1}/{config.train.epochs}", unit="batch")
            tick = time.perf_counter()
            for batch in loader:
                data_seconds = time.perf_counter() - tick
                batch = batch.to(device)
                features, lengths = frontend(batch.waveforms, batch.sample_counts)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                feature_seconds = time.perf_counter() - tick - data_seconds
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    logits, out_lengths = model(features, lengths, augment)
                log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # CTC wants (frames, batch, vocab)
                loss = ctc_loss(log_probs, batch.targets, out_lengths.cpu(), batch.target_lengths)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                progress.step += 1
                progress.batch_in_epoch += 1

                step_seconds = time.perf_counter() - tick
                audio_seconds = batch.sample_counts.sum().item() / config.features.sample_rate
                row = {
                    "step": progress.step,
                    "epoch": progress.epoch,
                    "loss": round(loss.item(), 5),
                    "lr": f"{scheduler.get_last_lr()[0]:.3e}",
                    "grad_norm": round(grad_norm.item(), 4),
                    "utterances": len(batch.indices),
                    "audio_seconds": round(audio_seconds, 3),
                    "padded_fraction": round(1 - batch.sample_counts.sum().item() / batch.waveforms.numel(), 4),
                    "data_seconds": round(data_seconds, 4),
                    "feature_seconds": round(feature_seconds, 4),
                    "step_seconds": round(step_seconds, 4),
                    "audio_seconds_per_second": round(audio_seconds / step_seconds, 2),
                }
                step_log.write(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", lr=row["lr"], audio_s_per_s=row["audio_seconds_per_second"])
                bar.update()
                if progress.step % config.train.checkpoint_every == 0 or finished():
                    save_checkpoint()
                if finished():
                    break
                tick = time.perf_counter()
            bar.close()
            if progress.batch_in_epoch < batches_this_epoch:
                break  # stopped mid-epoch by max_steps

            # --- end of epoch: dev WER, best model, checkpoint ---
            progress.epoch += 1
            progress.batch_in_epoch = 0
            if dev_utterances and progress.epoch % config.train.eval_every_epochs == 0:
                recognizer = Recognizer(config, vocabulary, model, device)
                hypotheses = decode_utterances(recognizer, dev_utterances, config.data.max_batch_seconds, config.data.num_workers)
                rates = error_rates([u.text for u in dev_utterances], hypotheses)
                log.info("epoch %d step %d: dev %s", progress.epoch, progress.step, rates)
                step_log.scalar("dev/wer", rates.wer, progress.step)
                if rates.wer < progress.best_wer:
                    progress.best_wer = rates.wer
                    atomic_save(model_payload(model, config_dict, vocabulary.characters, {"dev_wer": rates.wer}), exp_dir / "best.pt")
            save_checkpoint()
    finally:
        step_log.close()

    final = exp_dir / "model.pt"
    if (exp_dir / "best.pt").exists():
        shutil.copyfile(exp_dir / "best.pt", exp_dir / ".model.pt.tmp")
        os.replace(exp_dir / ".model.pt.tmp", final)
    else:
        atomic_save(model_payload(model, config_dict, vocabulary.characters), final)
    log.info("model written to %s (best dev WER %.2f%%)", final, 100 * progress.best_wer if dev_utterances else float("nan"))
    return final
