#!/usr/bin/env python3
"""LM beam-search speed and WER: this package's decoder (torchaudio's ctc_decoder, flashlight-text)
against pyctcdecode, on the same log-probabilities, KenLM model and beam width.

    python benchmarks/decode_speed.py MODEL MANIFEST --lm LM.arpa --lexicon LEXICON [--dev DEV] [--beam-size 50]

The acoustic model runs once; then each decoder decodes every utterance, one at a time on one
thread, for each (LM weight, word score) pair of one grid, and the best pair of each is reported
with its decoding time. The grid's LM weights are in pyctcdecode's units, a weight on the LM's
natural-log probability (pyctcdecode converts KenLM's log10 itself); flashlight adds its weight
times the log10 probability, so ours gets each weight times ln 10: both decoders search the same
weights. (Until 2026-12-02 both got the same numbers, so ours searched weights 2.3 times smaller;
on model H its best on speaker 84 was the grid's largest.) The word score is in natural-log units
in both. Best on MANIFEST itself by default; with --dev, each decoder's pair is chosen on DEV and MANIFEST is then decoded with it,
so that no figure reported was tuned on. pyctcdecode gets the lexicon's words as its unigram list
(its way of knowing the vocabulary); ours searches within the lexicon. Then, at our pair, our
decoder's pruning is tightened (beam threshold x tokens tried per frame) and the fastest setting
whose WER is no worse than pyctcdecode's is reported; pyctcdecode's own pruning (by default it
drops tokens below log-prob -5 and beams 10 below the best) is tightened too, for comparison.
WER differences come with a 95% paired bootstrap interval over utterances (2,000 resamplings of
the utterances, both decoders' errors on the same ones): how far apart the two really are on a set
this size. The target below is judged on the WERs themselves, not on the interval.
Needs `pip install --no-deps pyctcdecode pygtrie kenlm` (--no-deps: pyctcdecode 0.5 pins
numpy<2 but runs on numpy 2; kenlm compiles from source, about a minute).
Target: ours at least 10 times faster at equal or better WER.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from machine import cpu_name  # benchmarks/machine.py, beside this script

LN10 = math.log(10)  # flashlight's LM weight per pyctcdecode alpha: KenLM scores are log10


def decode_all(decode, outputs: list[torch.Tensor]) -> tuple[list[str], float]:
    """Hypotheses for every utterance and the seconds they took."""
    start = time.perf_counter()
    hypotheses = [decode(out) for out in outputs]
    return hypotheses, time.perf_counter() - start


def paired_bootstrap(references: list[str], ours: list[str], theirs: list[str], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """WER of ``ours`` minus WER of ``theirs`` in points, and its 95% interval from resampling utterances
    with replacement (paired: both decoders' errors on the same resampled utterances)."""
    import numpy as np

    from asr.metrics import utterance_errors

    words = np.array([len(r.split()) for r in references])
    difference = np.array([utterance_errors(r, a) - utterance_errors(r, b) for r, a, b in zip(references, ours, theirs)])
    samples = np.random.default_rng(seed).integers(0, len(references), size=(resamples, len(references)))
    spread = 100 * difference[samples].sum(axis=1) / words[samples].sum(axis=1)
    low, high = np.percentile(spread, [2.5, 97.5])
    return 100 * difference.sum() / words.sum(), float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model file")
    parser.add_argument("manifest", help="JSON-lines manifest to decode and score")
    parser.add_argument("--lm", required=True, help="word n-gram LM (ARPA), used by both decoders")
    parser.add_argument("--lexicon", required=True, help="lexicon (asr lm build --lexicon); its words are pyctcdecode's unigrams")
    parser.add_argument("--dev", help="manifest to choose each decoder's LM weight and word score on (default: MANIFEST itself)")
    parser.add_argument("--beam-size", type=int, default=50)
    parser.add_argument("--weights", default="0,0.25,0.375,0.5,0.75,1,1.5,2",
                        help="LM weights to try, in pyctcdecode's units (comma-separated; ours gets each times ln 10)")
    parser.add_argument("--scores", default="-2,-1.5,-1,-0.5,0,1,2", help="word scores to try (comma-separated; negative ones: --scores=-2,-1)")
    parser.add_argument("--thresholds", default="25,15,10,7,5", help="our beam thresholds to try at our best weights")
    parser.add_argument("--token-beams", default="0,10,5", help="our tokens tried per frame (0: all) to try at our best weights")
    args = parser.parse_args()

    from pyctcdecode import build_ctcdecoder

    import asr
    from asr.data import read_manifest
    from asr.decoding import BeamSearchDecoder, greedy_decode
    from asr.evaluate import utterance_log_probs
    from asr.metrics import error_rates

    torch.set_num_threads(1)
    recognizer = asr.load_model(args.model, device="cpu")
    vocabulary = recognizer.vocabulary

    def load(manifest: str) -> tuple[list[torch.Tensor], list[str]]:
        utterances = read_manifest(manifest, None)
        return utterance_log_probs(recognizer, utterances, progress=False), [u.text for u in utterances]

    outputs, references = load(args.manifest)
    tune_outputs, tune_references = load(args.dev) if args.dev else (outputs, references)
    frames = sum(len(o) for o in outputs)
    print(f"machine: {cpu_name()}, 1 thread; {len(outputs)} utterances, {frames} frames; "
          f"beam {args.beam_size}; weights chosen on {args.dev or 'the same set'}")

    greedy, seconds = decode_all(lambda out: greedy_decode(out[None], torch.tensor([len(out)]), vocabulary)[0], outputs)
    print(f"greedy: {error_rates(references, greedy)}, {seconds:.3f} s")

    words = [line.split("\t")[0].split(" ")[0] for line in open(args.lexicon, encoding="utf-8") if line.strip()]
    labels = ["" if i == vocabulary.blank_id else token for i, token in enumerate(vocabulary.tokens)]

    def decoders(weight: float, score: float):
        ours = BeamSearchDecoder(vocabulary, lm=args.lm, lexicon=args.lexicon, beam_size=args.beam_size, lm_weight=weight * LN10, word_score=score)
        theirs = build_ctcdecoder(labels, kenlm_model_path=args.lm, unigrams=words, alpha=weight, beta=score)
        return {
            "asr (flashlight)": lambda out: ours(out[None], torch.tensor([len(out)]))[0],
            "pyctcdecode": lambda out: theirs.decode(out.numpy(), beam_width=args.beam_size),
        }

    best = {}  # decoder name -> (rates, seconds, weight, score, hypotheses) of its best cell on the tuning set
    for weight in [float(x) for x in args.weights.split(",")]:
        for score in [float(x) for x in args.scores.split(",")]:
            for name, decode in decoders(weight, score).items():
                hypotheses, seconds = decode_all(decode, tune_outputs)
                rates = error_rates(tune_references, hypotheses)
                print(f"  {name:17s} lm_weight {weight:g} word_score {score:g}: {rates}, {seconds:.3f} s")
                if name not in best or (rates.wer, seconds) < (best[name][0].wer, best[name][1]):
                    best[name] = (rates, seconds, weight, score, hypotheses)
    if args.dev:
        print(f"each decoder's best weights on {args.dev}, used on {args.manifest}:")
        for name, (_, _, weight, score, _) in best.items():
            hypotheses, seconds = decode_all(decoders(weight, score)[name], outputs)
            best[name] = (error_rates(references, hypotheses), seconds, weight, score, hypotheses)
    else:
        print("best of each:")
    for name, (rates, seconds, weight, score, _) in best.items():
        print(f"  {name:17s} {rates}, {seconds:.3f} s ({1000 * seconds / len(outputs):.1f} ms per utterance; lm_weight {weight:g}, word_score {score:g})")
    ratio = best["pyctcdecode"][1] / best["asr (flashlight)"][1]
    print(f"speed-up over pyctcdecode: {ratio:.1f}x (target >= 10x); WER {100 * best['asr (flashlight)'][0].wer:.2f}% vs {100 * best['pyctcdecode'][0].wer:.2f}%")
    their_hypotheses = best["pyctcdecode"][4]
    difference, low, high = paired_bootstrap(references, best["asr (flashlight)"][4], their_hypotheses)
    print(f"WER ours minus pyctcdecode's: {difference:+.2f} points (95% paired bootstrap over utterances: {low:+.2f} to {high:+.2f})")

    _, _, weight, score, _ = best["asr (flashlight)"]
    their_rates, their_seconds = best["pyctcdecode"][:2]
    print(f"our pruning at lm_weight {weight:g} (flashlight's {weight * LN10:.3g}), word_score {score:g}, on {args.manifest}:")
    fastest = quickest = None  # quickest: our fastest setting whatever its WER
    for threshold in [float(x) for x in args.thresholds.split(",")]:
        for token_beam in [int(x) for x in args.token_beams.split(",")]:
            ours = BeamSearchDecoder(vocabulary, lm=args.lm, lexicon=args.lexicon, beam_size=args.beam_size, beam_threshold=threshold, lm_weight=weight * LN10, word_score=score, beam_size_token=token_beam)
            hypotheses, seconds = decode_all(lambda out: ours(out[None], torch.tensor([len(out)]))[0], outputs)
            rates = error_rates(references, hypotheses)
            print(f"  beam_threshold {threshold:g} beam_size_token {token_beam}: {rates}, {seconds:.3f} s")
            if rates.wer <= their_rates.wer and (fastest is None or seconds < fastest[1]):
                fastest = (rates, seconds, threshold, token_beam)
            if quickest is None or seconds < quickest[1]:
                quickest = (rates, seconds, threshold, token_beam, hypotheses)
    if fastest:
        rates, seconds, threshold, token_beam = fastest
        print(f"fastest of ours with WER <= pyctcdecode's ({100 * their_rates.wer:.2f}%): beam_threshold {threshold:g}, "
              f"beam_size_token {token_beam}: WER {100 * rates.wer:.2f}%, {seconds:.3f} s, {their_seconds / seconds:.1f}x faster (target >= 10x)")
    else:
        print(f"no pruning setting of ours reached pyctcdecode's WER ({100 * their_rates.wer:.2f}%)")
    if quickest:
        rates, seconds, threshold, token_beam, hypotheses = quickest
        difference, low, high = paired_bootstrap(references, hypotheses, their_hypotheses)
        print(f"quickest of ours (beam_threshold {threshold:g}, beam_size_token {token_beam}): {their_seconds / seconds:.1f}x faster; "
              f"WER minus pyctcdecode's {difference:+.2f} points (95% paired bootstrap: {low:+.2f} to {high:+.2f})")

    _, _, weight, score, _ = best["pyctcdecode"]
    theirs = build_ctcdecoder(labels, kenlm_model_path=args.lm, unigrams=words, alpha=weight, beta=score)
    print(f"pyctcdecode's pruning at lm_weight {weight:g}, word_score {score:g}, on {args.manifest} (its default: -5, -10):")
    for token_min_logp in (-5.0, -3.0):
        for beam_prune_logp in (-10.0, -5.0):
            decode = lambda out: theirs.decode(out.numpy(), beam_width=args.beam_size, token_min_logp=token_min_logp, beam_prune_logp=beam_prune_logp)
            hypotheses, seconds = decode_all(decode, outputs)
            print(f"  token_min_logp {token_min_logp:g} beam_prune_logp {beam_prune_logp:g}: {error_rates(references, hypotheses)}, {seconds:.3f} s")


if __name__ == "__main__":
    main()
