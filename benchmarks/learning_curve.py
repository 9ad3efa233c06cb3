#!/usr/bin/env python3
"""How much data does a model need? Train on 1/8, 1/4, 1/2 and all of the training hours, fit CER
against hours, and predict the CER at 10 and 100 hours.

    python benchmarks/learning_curve.py CONFIG DATA_DIR [--out-dir DIR] [--test-speakers 84 174]
        [--fractions 0.125 0.25 0.5 1] [--equal-epochs] [--extra-speech MANIFEST [--extra-speech ...]
        [--extra-fractions 0.5 1] [--extra-rules steps epochs]] [section.key=value ...]

DATA_DIR is a LibriSpeech-layout folder: the --test-speakers are the test set, everyone else the
training set. Each fraction is a seeded random share of the training utterances (the smaller
shares lie inside the larger ones), trained with CONFIG and the overrides into OUT_DIR/hours_F/
(rerunning resumes, and skips fractions already trained) and scored greedily on the test set.

Every share gets about the same number of training steps: a share of fraction F trains for
train.epochs / F epochs (rounded), so 1/8 of the data is seen eight times as often and the curve
measures data, not compute. `--equal-epochs` trains every share for train.epochs epochs instead
(the small shares then also get fewer steps, and look worse than data alone makes them).

The fit is a power law, CER = a * hours^-b (a straight line in log-log axes, least squares over
the fractions); OUT_DIR/learning_curve.png plots the measurements and the fit, and the figures
are printed and written to OUT_DIR/learning_curve.tsv. A power law keeps falling forever while
real error rates level off, so the 10 and 100 hour predictions are optimistic when measured
points are few or far from those sizes: read them as "at best". A curve that is already bending
shows it in the second fit, through the two largest shares alone (the local slope), whose
predictions are printed beside the first and drawn dotted.

Other people's speech (`--extra-speech`, JSON-lines manifests of other corpora) makes more
series: all of DATA_DIR's training set plus each of the --extra-fractions of the other corpora's
hours (nested shares), trained by each of the --extra-rules: `steps` (equal steps again:
train.epochs x in-domain hours / all hours, so the other hours take the in-domain hours' place in
the same compute) and `epochs` (train.epochs epochs: the in-domain hours seen as often as alone,
the other hours paid for in steps, as a recipe that adds a corpus does). The points are drawn at
their total hours, the in-domain and other hours kept apart in the TSV, and each is read against
the in-domain fits: the in-domain hours that would give its CER, so "an hour of other speech is
worth x hours of in-domain speech" (negative: it cost more than it gave).
"""

from __future__ import annotations

import argparse
import logging
import math
import random
from pathlib import Path

import numpy as np

from asr.config import load_config
from asr.data import read_manifest, write_manifest
from asr.evaluate import evaluate
from asr.metrics import ErrorRates
from asr.librispeech import make_manifest
from asr.recognizer import load_model
from asr.train import train
from machine import cpu_name  # benchmarks/machine.py, beside this script


EXTRA_RULES = {"steps": "equal steps", "epochs": "equal epochs"}  # how a series with other speech trains


def fit_power_law(hours: list[float], cers: list[float]) -> tuple[float, float]:
    """(a, b) of CER = a * hours^-b, least squares on log CER against log hours."""
    slope, intercept = np.polyfit(np.log(hours), np.log(cers), 1)
    return float(math.exp(intercept)), float(-slope)


def epochs_for_share(fraction: float, epochs: int, equal_steps: bool = True) -> int:
    """Epochs a share of `fraction` of the data trains for, so that it takes about as many steps as
    `epochs` epochs of all of it (or `epochs` itself, without `equal_steps`)."""
    return max(1, round(epochs / fraction)) if equal_steps else epochs


def nested_shares(records: list[dict], fractions: list[float], seed: int) -> dict[float, list[dict]]:
    """For each fraction, the first utterances of one seeded shuffle that add up to that share of the hours."""
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    total = sum(r["duration"] for r in shuffled)
    shares = {}
    for fraction in fractions:
        taken, seconds = [], 0.0
        for record in shuffled:
            if seconds >= fraction * total - 1e-6:
                break
            taken.append(record)
            seconds += record["duration"]
        shares[fraction] = taken
    return shares


def in_domain_equivalent(fit: tuple[float, float], cer: float) -> float:
    """The hours a power-law fit (a, b) needs to reach ``cer``: the inverse of ``power_law``."""
    a, b = fit
    return (cer / a) ** (-1 / b)


def power_law(fit: tuple[float, float], hours: float | np.ndarray) -> float | np.ndarray:
    """CER = a * hours^-b of a fit (a, b), for a number or an array of hours."""
    a, b = fit
    return a * hours**-b


def plot(
    path: Path,
    hours: list[float],
    cers: list[float],
    fit: tuple[float, float],
    tail: tuple[float, float],
    extra: list[tuple[float, float, float, str]] = (),
) -> None:
    """The measured CERs and both fits against hours (log-log); ``extra`` points are (in-domain
    hours, other hours, CER, rule) of the series with other corpora, drawn at their total hours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(6, 4))
    lines = (
        (
            fit,
            np.geomspace(min(hours) / 1.5, 100, 100),
            "--",
            "tab:blue",
            f"fit: CER = {100 * fit[0]:.1f}% x hours^-{fit[1]:.2f}",
        ),
        (tail, np.geomspace(sorted(hours)[-2], 100, 50), ":", "tab:gray", "two largest shares' slope"),
    )
    for line_fit, grid, style, color, label in lines:
        ax.plot(grid, 100 * power_law(line_fit, grid), style, color=color, label=label)
        for target in (10, 100):
            cer = 100 * power_law(line_fit, target)
            ax.plot([target], [cer], "s", color=color, fillstyle="none")
            ax.annotate(f"{cer:.1f}%", (target, cer), textcoords="offset points", xytext=(5, 5), color=color)
    ax.plot(hours, [100 * c for c in cers], "o", color="tab:red", label="measured: in-domain hours")
    # The rules' points share their hours: labels upright, equal steps' above, equal epochs' below.
    for rule, marker, color, dy, va in (
        ("steps", "^", "tab:green", 6, "bottom"),
        ("epochs", "v", "tab:purple", -6, "top"),
    ):
        points = [(own + other, other, cer) for own, other, cer, r in extra if r == rule]
        if points:
            label = f"all in-domain + other hours, {EXTRA_RULES[rule]}"
            ax.plot([t for t, _, _ in points], [100 * c for _, _, c in points], marker, color=color, label=label)
        for total, other, cer in points:
            ax.annotate(
                f"+{other:.2f} h",
                (total, 100 * cer),
                textcoords="offset points",
                xytext=(0, dy),
                color=color,
                rotation=90,
                ha="center",
                va=va,
                fontsize=8,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    low, high = ax.get_ylim()
    ax.set_yticks([t for t in (5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100) if low <= t <= high])
    ax.set_ylim(low, high)
    ax.set_xlabel("training hours")
    ax.set_ylabel("test CER (%), greedy")
    ax.set_title("Learning curve")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def train_and_score(config, exp_dir: Path, records: list[dict], epochs: int, test: list) -> ErrorRates:
    """Train ``config`` on ``records`` for ``epochs`` epochs into ``exp_dir`` (unless its model.pt
    exists: a rerun resumes) and score its model.pt greedily on ``test``."""
    write_manifest(exp_dir / "train.jsonl", records)
    config.data.train_manifest, config.data.dev_manifest = str(exp_dir / "train.jsonl"), ""
    config.train.exp_dir = str(exp_dir)
    config.train.epochs = epochs
    if not (exp_dir / "model.pt").exists():
        train(config)
    return evaluate(load_model(exp_dir / "model.pt"), test, exp_dir / "decode_test.jsonl", progress=False)


def hours_of(records: list[dict]) -> float:
    """The hours of audio in ``records``."""
    return sum(r["duration"] for r in records) / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("data", type=Path, help="LibriSpeech-layout folder")
    parser.add_argument("--out-dir", type=Path, default=Path("exp/learning_curve"))
    parser.add_argument("--test-speakers", nargs="+", default=["84", "174"])
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.125, 0.25, 0.5, 1.0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle the shares are taken from")
    parser.add_argument(
        "--equal-epochs", action="store_true", help="train every share for train.epochs (default: equal steps)"
    )
    parser.add_argument(
        "--extra-speech",
        action="append",
        type=Path,
        default=[],
        help="the manifest of another corpus (repeatable): a second series",
    )
    parser.add_argument(
        "--extra-fractions", nargs="+", type=float, default=[0.5, 1.0], help="shares of the other corpora's hours"
    )
    parser.add_argument(
        "--extra-rules", nargs="+", choices=list(EXTRA_RULES), default=["steps"], help="how the other series train"
    )
    parser.add_argument("overrides", nargs="*", help="section.key=value config overrides for every training")
    args = parser.parse_intermixed_args()
    if len(args.fractions) < 2 or not all(0 < f <= 1 for f in args.fractions):
        parser.error("--fractions: at least two shares in (0, 1]")
    if not all(0 < f <= 1 for f in args.extra_fractions):
        parser.error("--extra-fractions: shares in (0, 1]")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    out = args.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    make_manifest(args.data, out / "train_all.jsonl", exclude_speakers=set(args.test_speakers))
    make_manifest(args.data, out / "test.jsonl", include_speakers=set(args.test_speakers))

    def records_of(manifest: Path) -> list[dict]:
        return [
            {"audio_filepath": str(u.audio_filepath), "duration": u.duration, "text": u.text}
            for u in read_manifest(manifest)
        ]

    records = records_of(out / "train_all.jsonl")
    others = [r for manifest in args.extra_speech for r in records_of(manifest)]
    test = read_manifest(out / "test.jsonl")
    if not records or not test:
        parser.error(f"{args.data}: no training or no test utterances for test speakers {' '.join(args.test_speakers)}")
    if args.extra_speech and not others:
        parser.error("--extra-speech: the manifests list no utterances")

    epochs = load_config(args.config, args.overrides).train.epochs
    hours, cers, wers = [], [], []
    for fraction, share in sorted(nested_shares(records, args.fractions, args.seed).items()):
        share_epochs = epochs_for_share(fraction, epochs, equal_steps=not args.equal_epochs)
        rates = train_and_score(
            load_config(args.config, args.overrides), out / f"hours_{fraction:g}", share, share_epochs, test
        )
        hours.append(hours_of(share))
        cers.append(max(rates.cer, 1e-4))
        wers.append(rates.wer)
        print(
            f"{fraction:g} of the training set: {hours[-1]:.3f} h, {len(share)} utterances, "
            f"{share_epochs} epochs: test {rates}",
            flush=True,
        )

    own_hours = hours_of(records)
    extra = []  # (in-domain hours, other hours, CER, rule, WER)
    other_shares = sorted(nested_shares(others, args.extra_fractions, args.seed).items()) if others else []
    for rule in args.extra_rules:
        for fraction, share in other_shares:
            total = own_hours + hours_of(share)
            equal_steps = rule == "steps" and not args.equal_epochs
            share_epochs = epochs_for_share(total / own_hours, epochs, equal_steps=equal_steps)
            exp_dir = out / (f"other_{fraction:g}" if rule == "steps" else f"other_{fraction:g}_epochs")
            rates = train_and_score(
                load_config(args.config, args.overrides), exp_dir, records + share, share_epochs, test
            )
            extra.append((own_hours, hours_of(share), max(rates.cer, 1e-4), rule, rates.wer))
            print(
                f"all of the training set + {fraction:g} of the other speech ({hours_of(share):.3f} h, "
                f"{len(share)} utterances), {share_epochs} epochs ({EXTRA_RULES[rule]}): test {rates}",
                flush=True,
            )

    fit = fit_power_law(hours, cers)
    tail = fit_power_law(hours[-2:], cers[-2:])
    plot(out / "learning_curve.png", hours, cers, fit, tail, [e[:4] for e in extra])
    with open(out / "learning_curve.tsv", "w") as tsv:
        tsv.write("hours\tcer\twer\tkind\tin_domain_hours\tother_hours\n")  # kind: measured_with_other_<rule>
        for h, c, w in zip(hours, cers, wers):
            tsv.write(f"{h:.4f}\t{c:.4f}\t{w:.4f}\tmeasured\t{h:.4f}\t0\n")
        for own, other, c, rule, w in extra:
            kind = f"measured_with_other_{rule}"
            tsv.write(f"{own + other:.4f}\t{c:.4f}\t{w:.4f}\t{kind}\t{own:.4f}\t{other:.4f}\n")
        for line_fit, kind in ((fit, "predicted"), (tail, "predicted_from_two_largest")):
            for target in (10, 100):
                tsv.write(f"{target}\t{power_law(line_fit, target):.4f}\t\t{kind}\t\t\n")
    print(f"\nmachine: {cpu_name()}; config {args.config} {' '.join(args.overrides)}")
    print(f"fit: CER = {100 * fit[0]:.2f}% x hours^-{fit[1]:.3f}")
    for target in (10, 100):
        print(
            f"predicted CER at {target} h: {100 * power_law(fit, target):.1f}% "
            "(at best: a power law never levels off); "
            f"{100 * power_law(tail, target):.1f}% on the slope of the two largest shares (hours^-{tail[1]:.3f})"
        )
    for own, other, c, rule, _ in extra:
        worth = [(in_domain_equivalent(f, c) - own) / other for f in (fit, tail)]
        print(
            f"+{other:.3f} h of other speech ({EXTRA_RULES[rule]}): CER {100 * c:.2f}%, "
            f"as {own + worth[0] * other:.2f} in-domain hours would give on the fit: "
            f"an hour of it is worth {worth[0]:.2f} in-domain hours ({worth[1]:.2f} on the two largest shares' slope)"
        )
    print(f"plot: {out / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
