"""What the voice-activity detector costs in words: each manifest transcribed as ``asr transcribe``
does, without the VAD and with it at each threshold, padding and loudness rule asked for, scored
(``--loud-dbs``: ``decoding.vad_loud_db``, sound this far above the noise floor kept as speech, 0 off).

    python benchmarks/vad_word_loss.py MODEL MANIFEST [MANIFEST ...] [--thresholds 0.5,0.3]
        [--pads 0.3] [--loud-dbs 0,15] [--json]

The model runs once per manifest; only the silencing of non-speech frames and the decoding are
repeated. "words lost" counts the reference words the transcript without the VAD had right that
the one with it lacks (a deletion or a substitution where there was a hit): speech the VAD kept
the model from transcribing; "words gained" the other way round (noise it kept the model from
writing into a word). The figures, with command, machine and date, go in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from machine import cpu_name  # benchmarks/machine.py, beside this script


def _floats(text: str) -> list[float]:
    return [float(value) for value in text.split(",")]


def hit_words(reference: str, hypothesis: str) -> set[int]:
    """Indices of the reference words that ``hypothesis`` has right (jiwer's alignment)."""
    import jiwer

    hits = set()
    for chunk in jiwer.process_words(reference, hypothesis).alignments[0]:
        if chunk.type == "equal":
            hits.update(range(chunk.ref_start_idx, chunk.ref_end_idx))
    return hits


def score_settings(model: str, manifest: str, settings: list[tuple[str, float, float, float]]) -> list[dict]:
    """One row per (vad, threshold, pad, loud dB) of ``settings``, the first being the baseline compared with."""
    import torch

    from asr.data import read_manifest
    from asr.metrics import error_rates
    from asr.recognizer import load_model
    from asr.transcribe import model_outputs, transcribe_log_probs

    torch.set_num_threads(2)
    recognizer = load_model(model, device="cpu")
    utterances = read_manifest(manifest)
    references = [u.text for u in utterances]
    start = time.perf_counter()
    items = list(model_outputs(recognizer, [u.audio_filepath for u in utterances]))
    model_seconds = time.perf_counter() - start
    rows, baseline, baseline_texts = [], None, None
    for vad, threshold, pad, loud in settings:
        config = dataclasses.replace(
            recognizer.config.decoding, vad=vad, vad_threshold=threshold, vad_pad_seconds=pad, vad_loud_db=loud
        )
        start = time.perf_counter()
        hypotheses = [
            transcribe_log_probs(recognizer, item.source, item.samples, item.log_probs.copy(), config).text
            for item in items
        ]
        seconds = time.perf_counter() - start
        hits = [hit_words(r, h) for r, h in zip(references, hypotheses)]
        baseline, baseline_texts = baseline or hits, baseline_texts or hypotheses
        lost = sum(len(b - h) for b, h in zip(baseline, hits))
        gained = sum(len(h - b) for b, h in zip(baseline, hits))
        rates = error_rates(references, hypotheses)
        rows.append(
            {
                "manifest": manifest,
                "vad": vad,
                "threshold": threshold if vad != "off" else None,
                "pad": pad if vad != "off" else None,
                "loud_db": loud if vad != "off" else None,
                **rates.as_dict(),
                "words_lost": lost,
                "words_gained": gained,
                "files_changed": sum(b != h for b, h in zip(baseline_texts, hypotheses)),
                "decode_seconds": round(seconds, 1),
                "model_seconds": round(model_seconds, 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--thresholds", type=_floats, default=[0.5], help="Silero speech thresholds, comma-separated")
    parser.add_argument("--pads", type=_floats, default=[0.3], help="VAD padding (seconds), comma-separated")
    parser.add_argument("--loud-dbs", type=_floats, default=[15.0], help="decoding.vad_loud_db values, comma-separated")
    parser.add_argument("--json", action="store_true", help="one JSON line per row instead of the table")
    args = parser.parse_args()
    settings = [("off", 0.5, 0.3, 0.0)] + [
        ("silero", t, p, loud) for t in args.thresholds for p in args.pads for loud in args.loud_dbs
    ]
    if not args.json:
        print(f"machine: {cpu_name()}; model {args.model}; words lost/gained against vad off")
        print(
            "| manifest | vad | threshold | pad (s) | loud (dB) | WER | deletions | words lost | words gained ", end=""
        )
        print("| files changed |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for manifest in args.manifests:
        for row in score_settings(args.model, manifest, settings):
            if args.json:
                print(json.dumps(row))
                continue
            print(
                f"| {row['manifest']} | {row['vad']} | {row['threshold'] or ''} | {row['pad'] or ''} "
                f"| {row['loud_db'] or ''} "
                f"| {100 * row['wer']:.2f}% | {row['deletions']} | {row['words_lost']} | {row['words_gained']} "
                f"| {row['files_changed']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
