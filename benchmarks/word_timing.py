#!/usr/bin/env python3
"""Word-timing accuracy: how far each word's start and end are from where it really is.

    python benchmarks/word_timing.py MODEL [--files 10] [--first-seed 7]

Each file is 12 digit words synthesized one at a time, trimmed to their sound and joined with
0.5 s pauses (`asr.digits.separately_spoken_digits`), so every word's true place is known. Two
ways to get times are measured: `model.align` with the true words (forced alignment of a known
transcript) and `model.transcribe` (its words matched to the true ones in order; unrecognised
words have no time to check). Target (issue 5): every word's start and end within 100 ms.
"""

from __future__ import annotations

import argparse
import difflib

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model file")
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=7)
    args = parser.parse_args()

    import asr
    from asr.digits import separately_spoken_digits

    torch.set_num_threads(1)
    model = asr.load_model(args.model, device="cpu")
    errors = {"align": [], "transcribe": []}
    recognised = total = 0
    for seed in range(args.first_seed, args.first_seed + args.files):
        audio, truth = separately_spoken_digits(seed)
        aligned = model.align(audio, " ".join(word for word, _, _ in truth))
        pairs = {"align": list(zip(truth, aligned))}
        got = [w for s in model.transcribe(audio).segments for w in s.words]
        matcher = difflib.SequenceMatcher(None, [w for w, _, _ in truth], [g.word for g in got], autojunk=False)
        pairs["transcribe"] = [
            (truth[a + k], got[b + k]) for a, b, n in matcher.get_matching_blocks() for k in range(n)
        ]
        recognised += len(pairs["transcribe"])
        total += len(truth)
        for how, matched in pairs.items():
            worst = (
                max((max(abs(w.start - start), abs(w.end - end)), word) for (word, start, end), w in matched)
                if matched
                else (0.0, "")
            )
            errors[how] += [max(abs(w.start - start), abs(w.end - end)) for (_, start, end), w in matched]
            print(
                f"seed {seed} {how:10s}: {len(matched):2d} of {len(truth)} "
                f"words timed, worst {1000 * worst[0]:.0f} ms ({worst[1]})"
            )
    for how, errs in errors.items():
        within = sum(e <= 0.1 for e in errs)
        errs = sorted(errs)
        print(
            f"{how}: {within} of {len(errs)} timed words within 100 ms at both edges; median worst-edge error "
            f"{1000 * errs[len(errs) // 2]:.0f} ms, max {1000 * errs[-1]:.0f} ms"
            if errs
            else f"{how}: no words timed"
        )
    print(f"transcribe recognised {recognised} of {total} words")


if __name__ == "__main__":
    main()
