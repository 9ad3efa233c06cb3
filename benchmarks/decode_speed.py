#!/usr/bin/env python3
"""LM beam-search speed and WER: this package's decoder (torchaudio's ctc_decoder, flashlight-text)
against pyctcdecode, on the same log-probabilities, KenLM model and beam width.

    python benchmarks/decode_speed.py MODEL MANIFEST --lm LM.arpa --lexicon LEXICON [--dev DEV] [--beam-size 50]

The acoustic model runs once; then each decoder decodes every utterance, one at a time on one
thread (inputs made before the clock starts, in the form each API takes), for each (LM weight,
word score) pair of one grid. Times are the fastest of --repeats passes, the decoders' passes taken in turn. It reports:

1. Same weights: the grid on MANIFEST, cell by cell. In how many cells is our WER no worse than
   pyctcdecode's, and how much faster? No weight choice is involved: this compares the searches.
2. Each decoder at its own best pair, chosen on DEV (--dev; else on MANIFEST itself), WER ties
   going to the pair whose grid neighbours have the lowest mean WER, then to the lower CER
   (`choose_cell`, the same rule for both), with a 95% paired bootstrap interval for the WER
   difference (2,000 resamplings of the utterances): how far apart the two really are on a set
   this size. A pair on the grid's edge is flagged.
3. Our pruning (beam threshold x tokens tried per frame) at our pair: the fastest setting whose
   WER on DEV is no worse than pyctcdecode's there, then its WER and speed on MANIFEST. That line
   is the target's verdict. Every setting's figures on MANIFEST follow, and pyctcdecode's own
   tighter pruning (by default it drops tokens below log-prob -5 and beams 10 below the best).

LM weights are in pyctcdecode's units, a weight on the LM's natural-log probability (pyctcdecode
converts KenLM's log10 itself); flashlight multiplies its weight by the log10 probability, so ours
gets each weight times ln 10. Word scores are natural-log units in both. pyctcdecode gets the
lexicon's words as its unigram list (its way of knowing the vocabulary); ours searches within the
lexicon. Our pruning is chosen on DEV, never on MANIFEST, and word scores reach 4 because on
digits both decoders' best pairs lie near 2-4.
Needs `pip install --no-deps pyctcdecode pygtrie kenlm` (--no-deps: pyctcdecode 0.5 pins
numpy<2 but runs on numpy 2; kenlm compiles from source, about a minute).
Target: ours at least 10 times faster at equal or better WER.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import NamedTuple

import numpy as np
import torch

from machine import cpu_name  # benchmarks/machine.py, beside this script

LN10 = math.log(10)  # flashlight's LM weight per pyctcdecode alpha: KenLM scores are log10


class Prepared(NamedTuple):
    """One utterance's log-probabilities in the form each decoder's API takes, made before any
    timing: a (1, frames, vocab) batch and its lengths for ours, a (frames, vocab) array for pyctcdecode."""

    batch: torch.Tensor
    lengths: torch.Tensor
    array: np.ndarray


def prepare(log_probs: torch.Tensor) -> Prepared:
    return Prepared(log_probs[None], torch.tensor([len(log_probs)]), log_probs.numpy())


def decode_all(decode, outputs: list[Prepared]) -> tuple[list[str], float]:
    """Hypotheses for every utterance and the seconds they took."""
    start = time.perf_counter()
    hypotheses = [decode(out) for out in outputs]
    return hypotheses, time.perf_counter() - start


def race(decodes: list, outputs: list[Prepared], repeats: int) -> list[tuple[list[str], float]]:
    """Each decoder's hypotheses and the fastest of its ``repeats`` passes, the decoders' passes
    taken in turn: a pass over 500 short utterances takes tens of milliseconds and varies by a third
    here, and a spell of slowness on a shared machine then falls on all of them."""
    runs = [[decode_all(decode, outputs) for decode in decodes] for _ in range(repeats)]
    return [(runs[0][i][0], min(run[i][1] for run in runs)) for i in range(len(decodes))]


def timed(decode, outputs: list[Prepared], repeats: int) -> tuple[list[str], float]:
    """``race`` for one decoder."""
    return race([decode], outputs, repeats)[0]


def choose_cell(grid: dict[tuple[float, float], tuple[float, float]]) -> tuple[float, float]:
    """The (LM weight, word score) with the lowest WER in ``grid`` ((weight, score) -> (WER, CER)).
    Ties, common on a small dev set where cells differ by a word, go to the cell whose grid
    neighbours (up to 8) have the lowest mean WER (a flat region, likelier to carry over to other
    data), then to the lower CER, then to the lower weight and score: never to timing, which varies
    from run to run (on a digits dev set of 200 utterances, tied over most of the grid, the faster
    cell is the grid's edge)."""
    weights = sorted({w for w, _ in grid})
    scores = sorted({s for _, s in grid})

    def neighbourhood(cell: tuple[float, float]) -> float:
        i, j = weights.index(cell[0]), scores.index(cell[1])
        around = [
            grid[(weights[a], scores[b])][0]
            for a in range(max(i - 1, 0), min(i + 2, len(weights)))
            for b in range(max(j - 1, 0), min(j + 2, len(scores)))
            if (a, b) != (i, j) and (weights[a], scores[b]) in grid
        ]
        return sum(around) / len(around) if around else grid[cell][0]

    return min(grid, key=lambda cell: (grid[cell][0], neighbourhood(cell), grid[cell][1], cell))


def paired_bootstrap(
    references: list[str], ours: list[str], theirs: list[str], resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """WER of ``ours`` minus WER of ``theirs`` in points, and its 95% interval from resampling utterances
    with replacement (paired: both decoders' errors on the same resampled utterances)."""
    from asr.metrics import utterance_errors

    words = np.array([len(r.split()) for r in references])
    difference = np.array(
        [utterance_errors(r, a) - utterance_errors(r, b) for r, a, b in zip(references, ours, theirs)]
    )
    samples = np.random.default_rng(seed).integers(0, len(references), size=(resamples, len(references)))
    spread = 100 * difference[samples].sum(axis=1) / words[samples].sum(axis=1)
    low, high = np.percentile(spread, [2.5, 97.5])
    return 100 * difference.sum() / words.sum(), float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model file")
    parser.add_argument("manifest", help="JSON-lines manifest to decode and score")
    parser.add_argument("--lm", required=True, help="word n-gram LM (ARPA), used by both decoders")
    parser.add_argument(
        "--lexicon", required=True, help="lexicon (asr lm build --lexicon); its words are pyctcdecode's unigrams"
    )
    parser.add_argument(
        "--dev", help="manifest to choose each decoder's LM weight and word score on (default: MANIFEST itself)"
    )
    parser.add_argument("--beam-size", type=int, default=50)
    parser.add_argument(
        "--weights",
        default="0,0.25,0.375,0.5,0.75,1,1.5,2",
        help="LM weights to try, in pyctcdecode's units (comma-separated; ours gets each times ln 10)",
    )
    parser.add_argument(
        "--scores",
        default="-2,-1,-0.5,0,1,2,3,4",
        help="word scores to try (comma-separated; negative ones: --scores=-2,-1)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="passes timed on MANIFEST (the fastest counts; the --dev grid is timed once)",
    )
    parser.add_argument("--thresholds", default="25,15,10,7,5", help="our beam thresholds to try at our best weights")
    parser.add_argument(
        "--token-beams", default="0,10,5", help="our tokens tried per frame (0: all) to try at our best weights"
    )
    args = parser.parse_args()

    from pyctcdecode import build_ctcdecoder

    import asr
    from asr.data import read_manifest
    from asr.decoding import BeamSearchDecoder, greedy_decode
    from asr.evaluate import speech_outputs
    from asr.metrics import error_rates

    torch.set_num_threads(1)
    recognizer = asr.load_model(args.model, device="cpu")
    vocabulary = recognizer.vocabulary

    def load(manifest: str) -> tuple[list[torch.Tensor], list[str]]:
        utterances = read_manifest(manifest, None)
        return [prepare(out) for out in speech_outputs(recognizer, utterances, progress=False)], [
            u.text for u in utterances
        ]

    outputs, references = load(args.manifest)
    tune_outputs, tune_references = load(args.dev) if args.dev else (outputs, references)
    frames = sum(len(o.array) for o in outputs)
    print(
        f"machine: {cpu_name()}, 1 thread; {len(outputs)} utterances, {frames} frames; "
        f"beam {args.beam_size}; weights chosen on {args.dev or 'the same set'}"
    )

    greedy, seconds = decode_all(lambda out: greedy_decode(out.batch, out.lengths, vocabulary)[0], outputs)
    print(f"greedy: {error_rates(references, greedy)}, {seconds:.3f} s")

    words = [line.split("\t")[0].split(" ")[0] for line in open(args.lexicon, encoding="utf-8") if line.strip()]
    labels = ["" if i == vocabulary.blank_id else token for i, token in enumerate(vocabulary.tokens)]

    def decoders(weight: float, score: float):
        ours = BeamSearchDecoder(
            vocabulary,
            lm=args.lm,
            lexicon=args.lexicon,
            beam_size=args.beam_size,
            lm_weight=weight * LN10,
            word_score=score,
        )
        theirs = build_ctcdecoder(labels, kenlm_model_path=args.lm, unigrams=words, alpha=weight, beta=score)
        return {
            "asr (flashlight)": lambda out: ours(out.batch, out.lengths)[0],
            "pyctcdecode": lambda out: theirs.decode(out.array, beam_width=args.beam_size),
        }

    weights = [float(x) for x in args.weights.split(",")]
    scores = [float(x) for x in args.scores.split(",")]

    def run_grid(outputs: list[Prepared], references: list[str], name_of_set: str, repeats: int) -> dict:
        """decoder name -> {(weight, score): (rates, seconds, hypotheses)} over the whole grid."""
        print(f"grid on {name_of_set} (time: fastest of {repeats} passes):")
        grids: dict = {}
        for weight in weights:
            for score in scores:
                cell = decoders(weight, score)
                for name, (hypotheses, seconds) in zip(cell, race(list(cell.values()), outputs, repeats)):
                    rates = error_rates(references, hypotheses)
                    print(f"  {name:17s} lm_weight {weight:g} word_score {score:g}: {rates}, {seconds:.3f} s")
                    grids.setdefault(name, {})[(weight, score)] = (rates, seconds, hypotheses)
        return grids

    grids = run_grid(outputs, references, args.manifest, args.repeats)
    # The two searches compared cell by cell, at the very same weights: no weight choice involved.
    ours_grid, their_grid = grids["asr (flashlight)"], grids["pyctcdecode"]
    no_worse = [cell for cell in ours_grid if ours_grid[cell][0].wer <= their_grid[cell][0].wer]
    ratios = {cell: their_grid[cell][1] / ours_grid[cell][1] for cell in ours_grid}
    both = [cell for cell in no_worse if ratios[cell] >= 10]
    ordered = sorted(ratios.values())
    print(
        f"at the same weights on {args.manifest}: our WER <= "
        f"pyctcdecode's in {len(no_worse)} of {len(ours_grid)} cells, "
        f"ours >= 10x faster in {sum(r >= 10 for r in ordered)}, both in {len(both)}; "
        f"speed-up median {ordered[len(ordered) // 2]:.1f}x ({ordered[0]:.1f}-{ordered[-1]:.1f}x)"
    )

    tune_grids = run_grid(tune_outputs, tune_references, args.dev, 1) if args.dev else grids
    best = {}  # decoder name -> (rates, seconds, weight, score, hypotheses) on MANIFEST at its chosen cell
    print(f"each decoder's weights chosen on {args.dev or 'the same set'} (`choose_cell`), used on {args.manifest}:")
    cells = {
        name: choose_cell({cell: (rates.wer, rates.cer) for cell, (rates, _, _) in grid.items()})
        for name, grid in tune_grids.items()
    }
    raced = race([decoders(*cell)[name] for name, cell in cells.items()], outputs, args.repeats)  # timed in turn
    for (name, (weight, score)), (hypotheses, seconds) in zip(cells.items(), raced):
        best[name] = (error_rates(references, hypotheses), seconds, weight, score, hypotheses)
    for name, (rates, seconds, weight, score, _) in best.items():
        edge = (
            " (on the grid's edge: a wider grid may do better)"
            if weight == weights[-1] or 0 < weight == weights[0] or score in (scores[0], scores[-1])
            else ""
        )
        print(
            f"  {name:17s} {rates}, {seconds:.3f} s ({1000 * seconds / len(outputs):.1f} "
            f"ms per utterance; lm_weight {weight:g}, word_score {score:g}){edge}"
        )
    ratio = best["pyctcdecode"][1] / best["asr (flashlight)"][1]
    print(
        f"speed-up over pyctcdecode: {ratio:.1f}x (target >= 10x); WER "
        f"{100 * best['asr (flashlight)'][0].wer:.2f}% vs {100 * best['pyctcdecode'][0].wer:.2f}%"
    )
    their_hypotheses = best["pyctcdecode"][4]
    difference, low, high = paired_bootstrap(references, best["asr (flashlight)"][4], their_hypotheses)
    print(
        f"WER ours minus pyctcdecode's: {difference:+.2f} points (95% "
        f"paired bootstrap over utterances: {low:+.2f} to {high:+.2f})"
    )

    _, _, weight, score, _ = best["asr (flashlight)"]
    their_rates, their_seconds = best["pyctcdecode"][:2]

    def pruned(threshold: float, token_beam: int):
        ours = BeamSearchDecoder(
            vocabulary,
            lm=args.lm,
            lexicon=args.lexicon,
            beam_size=args.beam_size,
            beam_threshold=threshold,
            lm_weight=weight * LN10,
            word_score=score,
            beam_size_token=token_beam,
        )
        return lambda out: ours(out.batch, out.lengths)[0]

    # Our pruning, chosen without looking at MANIFEST: the fastest setting whose WER on the tuning set
    # is no worse than pyctcdecode's there (fewer tokens per frame is not always faster: flashlight
    # sorts them, so it is timed, not assumed).
    settings = [(float(t), int(k)) for t in args.thresholds.split(",") for k in args.token_beams.split(",")]
    their_tuning_wer = tune_grids["pyctcdecode"][best["pyctcdecode"][2:4]][0].wer
    good_enough = {}  # setting -> seconds on the tuning set
    for setting in settings:
        hypotheses, seconds = timed(pruned(*setting), tune_outputs, args.repeats)
        if error_rates(tune_references, hypotheses).wer <= their_tuning_wer:
            good_enough[setting] = seconds
    chosen = min(good_enough, key=good_enough.get) if good_enough else None

    their_default = decoders(*best["pyctcdecode"][2:4])["pyctcdecode"]
    print(
        f"our pruning at lm_weight {weight:g} (flashlight's "
        f"{weight * LN10:.3g}), word_score {score:g}, on {args.manifest}:"
    )
    fastest = quickest = None  # quickest: our fastest setting whatever its WER
    for threshold, token_beam in settings:
        if (threshold, token_beam) == chosen:  # the verdict: timed in turn with pyctcdecode's default
            (hypotheses, seconds), (_, their_now) = race(
                [pruned(threshold, token_beam), their_default], outputs, args.repeats
            )
        else:
            hypotheses, seconds = timed(pruned(threshold, token_beam), outputs, args.repeats)
        rates = error_rates(references, hypotheses)
        print(f"  beam_threshold {threshold:g} beam_size_token {token_beam}: {rates}, {seconds:.3f} s")
        if (threshold, token_beam) == chosen:
            print(
                f"chosen on {args.dev or 'the same set'} (the fastest pruning with "
                f"WER there <= pyctcdecode's, {100 * their_tuning_wer:.2f}%): "
                f"beam_threshold {threshold:g}, beam_size_token {token_beam}: on "
                f"{args.manifest} WER {100 * rates.wer:.2f}% vs {100 * their_rates.wer:.2f}%, "
                f"{seconds:.3f} s vs {their_now:.3f} s (timed in turn): "
                f"{their_now / seconds:.1f}x faster (target >= 10x at equal or better WER)"
            )
        if rates.wer <= their_rates.wer and (fastest is None or seconds < fastest[1]):
            fastest = (rates, seconds, threshold, token_beam)
        if quickest is None or seconds < quickest[1]:
            quickest = (rates, seconds, threshold, token_beam, hypotheses)
    if chosen is None:
        print(
            "no pruning setting of ours reached pyctcdecode's WER on "
            f"{args.dev or 'the same set'} ({100 * their_tuning_wer:.2f}%)"
        )
    if fastest:
        rates, seconds, threshold, token_beam = fastest
        print(
            f"fastest of ours with WER <= pyctcdecode's on {args.manifest} "
            f"({100 * their_rates.wer:.2f}%; chosen on this set itself): beam_threshold {threshold:g}, "
            f"beam_size_token {token_beam}: WER {100 * rates.wer:.2f}%, "
            f"{seconds:.3f} s, {their_seconds / seconds:.1f}x faster"
        )
    else:
        print(f"no pruning setting of ours reached pyctcdecode's WER ({100 * their_rates.wer:.2f}%)")
    if quickest:
        rates, seconds, threshold, token_beam, hypotheses = quickest
        difference, low, high = paired_bootstrap(references, hypotheses, their_hypotheses)
        print(
            f"quickest of ours (beam_threshold {threshold:g}, beam_size_token "
            f"{token_beam}): {their_seconds / seconds:.1f}x faster; "
            f"WER minus pyctcdecode's {difference:+.2f} points (95% paired bootstrap: {low:+.2f} to {high:+.2f})"
        )

    _, _, weight, score, _ = best["pyctcdecode"]
    theirs = build_ctcdecoder(labels, kenlm_model_path=args.lm, unigrams=words, alpha=weight, beta=score)
    print(
        f"pyctcdecode's pruning at lm_weight {weight:g}, word_score "
        f"{score:g}, on {args.manifest} (its default: -5, -10):"
    )
    for token_min_logp in (-5.0, -3.0):
        for beam_prune_logp in (-10.0, -5.0):

            def decode(out, token_min_logp=token_min_logp, beam_prune_logp=beam_prune_logp):
                return theirs.decode(
                    out.array, beam_width=args.beam_size, token_min_logp=token_min_logp, beam_prune_logp=beam_prune_logp
                )

            hypotheses, seconds = timed(decode, outputs, args.repeats)
            print(
                f"  token_min_logp {token_min_logp:g} beam_prune_logp {beam_prune_logp:g}: "
                f"{error_rates(references, hypotheses)}, {seconds:.3f} s"
            )


if __name__ == "__main__":
    main()
