"""Make a trained model yours: fine-tune it on a few minutes of one speaker's (or one domain's)
transcribed speech.

:func:`adapt` holds part of the user's utterances out, trains from the model on the rest with
settings made for a small set (a low learning rate, no weight decay, the model's own feature
statistics kept, a few hundred steps, the step count chosen on the held-out part), scores the
held-out part before and after as ``asr transcribe`` writes it, and writes the adapted model with
the original's decoding settings (its LM, lexicon and hot words). When adapting did not lower the
held-out error, the original model is written instead. Run it with ``asr adapt MODEL MANIFEST -o OUT``.
"""

from __future__ import annotations

import dataclasses
import logging
import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from .checkpoint import load_model_file
from .config import Config, DataConfig, DecodingConfig, check_config, config_from_dict
from .data import Utterance, read_manifest, write_manifest
from .evaluate import evaluate
from .metrics import ErrorRates
from .recognizer import load_model
from .text import Vocabulary
from .train import train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdaptOptions:
    """How :func:`adapt` fine-tunes; checked when adapting starts. The defaults were screened on
    the LibriSpeech dev speakers (recipes/librispeech/RESULTS.md)."""

    held_out: float = 0.2  # share of the utterances held out to choose the step count and score before/after
    steps: int = 200  # optimiser steps in all (rounded up to whole passes over the data)
    evaluations: int = 10  # held-out evaluations over the run (the best one is kept)
    lr: float = 5e-5
    batch_seconds: float = 20.0  # padded audio seconds per batch: small sets need many small steps
    freeze: tuple[str, ...] = ()  # parameter-name prefixes not trained (e.g. "subsample", "rnn.")
    renormalize: bool = False  # re-estimate the feature mean and variance on the user's speech
    stay_close: float = 0.0  # pull towards the original weights (train.stay_close, L2-SP)
    seed: int = 1234
    device: str = "auto"

    def __post_init__(self) -> None:
        checks = [
            ("held_out", self.held_out, 0 < self.held_out < 1, "between 0 and 1"),
            ("steps", self.steps, isinstance(self.steps, int) and self.steps >= 1, "a whole number, 1 or more"),
            ("evaluations", self.evaluations, isinstance(self.evaluations, int) and self.evaluations >= 1, "1 or more"),
            ("lr", self.lr, 0 < self.lr < math.inf, "positive and finite"),
            ("stay_close", self.stay_close, 0 <= self.stay_close < math.inf, "0 or more, finite"),
            ("batch_seconds", self.batch_seconds, 0 < self.batch_seconds < math.inf, "positive and finite"),
        ]
        for name, value, acceptable, expected in checks:
            if not acceptable:
                raise ValueError(f"adapt: {name} must be {expected}, not {value!r}")


@dataclass
class AdaptResult:
    """What :func:`adapt` did: the held-out scores before and after, and what it wrote."""

    output: Path
    before: ErrorRates  # the original model on the held-out utterances
    after: ErrorRates  # the adapted weights on them
    adapted: bool  # False: adapting did not help on the held-out utterances, so ``output`` is the original
    adapt_utterances: int
    held_out_utterances: int
    adapt_seconds: float
    steps: int
    epochs_by_held_out: list[tuple[int, float]] = field(default_factory=list)  # (epoch, held-out WER or CER)


def split_held_out(utterances: list[Utterance], share: float) -> tuple[list[Utterance], list[Utterance]]:
    """(to adapt on, held out): every k-th utterance held out (k = 1 / share, rounded), spread over
    the whole set rather than its end, so that the held-out part is like the rest; at least one of
    each. Raises ValueError for fewer than 2 utterances."""
    if len(utterances) < 2:
        raise ValueError("adapting needs at least 2 utterances: some to train on and some held out to check")
    every = max(2, round(1 / share))
    held_indices = {i for i in range(len(utterances)) if i % every == every - 1} or {len(utterances) - 1}
    kept = [u for i, u in enumerate(utterances) if i not in held_indices]
    return kept, [utterances[i] for i in sorted(held_indices)]


def adaptation_config(
    model_config: Config,
    model_path: Path,
    train_manifest: Path,
    held_out_manifest: Path,
    work_dir: Path,
    batches_per_epoch: int,
    options: AdaptOptions,
) -> Config:
    """The training config of an adaptation run: the model's own architecture and features, the
    user's data, and :class:`AdaptOptions`' schedule."""
    epochs = math.ceil(options.steps / batches_per_epoch)
    train_config = dataclasses.replace(
        model_config.train,
        exp_dir=str(work_dir),
        epochs=epochs,
        max_steps=0,
        lr=options.lr,
        min_lr_ratio=0.1,
        weight_decay=0.0,  # decay pulls every weight towards zero; a small set cannot pull them back
        warmup_steps=min(20, options.steps // 10),
        checkpoint_every=50,
        eval_every_epochs=max(1, epochs // options.evaluations),
        seed=options.seed,
        device=options.device,
        early_stopping_patience=0,
        average_last=0,
        resume=True,
        init_from=str(model_path),
        renormalize=options.renormalize,
        stay_close=options.stay_close,
        freeze=list(options.freeze),
    )
    data = DataConfig(
        train_manifest=str(train_manifest),
        dev_manifest=str(held_out_manifest),
        vocabulary="default",
        max_batch_seconds=options.batch_seconds,
        max_duration=options.batch_seconds,
        speed_perturbation=model_config.data.speed_perturbation,
        num_workers=model_config.data.num_workers,
    )
    return check_config(
        dataclasses.replace(model_config, data=data, train=train_config, decoding=DecodingConfig()), "adapt"
    )


def adapt(
    model_path: str | Path,
    manifest: str | Path,
    output: str | Path,
    options: AdaptOptions = AdaptOptions(),
    work_dir: str | Path | None = None,
) -> AdaptResult:
    """Fine-tune the model file ``model_path`` on ``manifest``'s utterances and write the result to
    ``output`` (see the module's docstring). ``work_dir`` (default ``OUTPUT.adapt/``) holds the
    split manifests and the training run: rerunning the same call after an interruption resumes it."""
    model_path, output = Path(model_path), Path(output)
    work_dir = Path(work_dir) if work_dir else output.with_name(output.name + ".adapt")
    data = load_model_file(model_path)
    model_config = config_from_dict(data["config"])
    vocabulary = Vocabulary(data["vocabulary"])
    utterances = read_manifest(manifest, vocabulary)
    kept, held = split_held_out(utterances, options.held_out)
    work_dir.mkdir(parents=True, exist_ok=True)
    train_manifest, held_out_manifest = work_dir / "adapt.jsonl", work_dir / "held_out.jsonl"
    for path, part in ((train_manifest, kept), (held_out_manifest, held)):
        write_manifest(
            path,
            (
                {
                    "audio_filepath": str(u.audio_filepath.resolve()),
                    "duration": u.duration,
                    "text": u.text,
                    "speaker": u.speaker,
                }
                for u in part
            ),
        )
    seconds = sum(u.duration for u in kept)
    # a batch holds at least the longest utterance
    batch_seconds = max(options.batch_seconds, max(u.duration for u in kept))
    options = dataclasses.replace(options, batch_seconds=batch_seconds)
    batches = max(1, math.ceil(seconds / batch_seconds))
    config = adaptation_config(model_config, model_path, train_manifest, held_out_manifest, work_dir, batches, options)
    log.info("adapting on %d utterances (%.1f min), %d held out", len(kept), seconds / 60, len(held))

    original = load_model(model_path, device=options.device)
    before = evaluate(original, held, progress=False)
    log.info("held out, before: %s", before)
    trained = train(config)
    adapted = load_model(trained, device=options.device)
    adapted.config = dataclasses.replace(adapted.config, decoding=original.config.decoding)
    after = evaluate(adapted, held, progress=False)
    metric = model_config.train.best_metric
    better = getattr(after, metric) < getattr(before, metric)
    log.info("held out, after: %s", after)
    if better:
        adapted.save(output)
    else:
        log.warning(
            "adapting did not lower the held-out %s (%.2f%% -> %.2f%%): %s is the original model",
            metric.upper(),
            100 * getattr(before, metric),
            100 * getattr(after, metric),
            output,
        )
        original.save(output)
    return AdaptResult(
        output=output,
        before=before,
        after=after,
        adapted=better,
        adapt_utterances=len(kept),
        held_out_utterances=len(held),
        adapt_seconds=seconds,
        steps=config.train.epochs * batches,
        epochs_by_held_out=_held_out_log(work_dir, metric),
    )


def _held_out_log(work_dir: Path, metric: str) -> list[tuple[int, float]]:
    """(epoch, held-out error) of each evaluation of the run, from its dev_log.csv."""
    with open(work_dir / "dev_log.csv", newline="") as file:
        return [(int(row["epoch"]), float(row[f"dev_{metric}"])) for row in csv.DictReader(file)]
