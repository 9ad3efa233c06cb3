"""Decoding a manifest and scoring it against its transcripts."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from pathlib import Path

import torch
from tqdm import tqdm

from .data import Utterance, ordered_batches, usable
from .metrics import ErrorRates, error_rates, utterance_errors
from .recognizer import Recognizer
from .report import settings_path

log = logging.getLogger(__name__)


def decode_utterances(
    recognizer: Recognizer,
    utterances: list[Utterance],
    max_batch_seconds: float = 200.0,
    num_workers: int = 1,
    progress: bool = True,
    skip_bad: bool = False,
) -> list[str | None]:
    """Transcripts of ``utterances`` (greedy, or beam search as the decoding config asks), in their
    order (batched by length internally). A file that cannot be read stops it with its one-line
    error (a score without it would mislead), or with ``skip_bad`` is logged and gets ``None``."""
    hypotheses: list[str | None] = [None] * len(utterances)
    with tqdm(total=len(utterances), desc="decode", unit="utt", disable=not progress, leave=False) as bar:
        for batch in ordered_batches(utterances, recognizer.sample_rate, max_batch_seconds, num_workers):
            if usable(batch, skip_bad):
                for index, text in zip(batch.indices, recognizer.decode(batch.waveforms, batch.sample_counts)):
                    hypotheses[index] = text
            bar.update(len(batch.indices) + len(batch.errors))
    return hypotheses


def utterance_log_probs(
    recognizer: Recognizer,
    utterances: list[Utterance],
    max_batch_seconds: float = 200.0,
    num_workers: int = 1,
    progress: bool = True,
) -> list[torch.Tensor]:
    """Each utterance's (frames, vocab) CTC log-probabilities, on the CPU, in input order."""
    outputs: list[torch.Tensor] = [torch.empty(0)] * len(utterances)
    batches = ordered_batches(utterances, recognizer.sample_rate, max_batch_seconds, num_workers)
    for batch in tqdm(batches, desc="acoustic model", unit="batch", disable=not progress, leave=False):
        usable(batch, skip_bad=False)
        log_probs, lengths = recognizer.log_probs(batch.waveforms, batch.sample_counts)
        for row, (index, length) in enumerate(zip(batch.indices, lengths.tolist())):
            outputs[index] = log_probs[row, :length].cpu()
    return outputs


def tune_lm(
    recognizer: Recognizer,
    utterances: list[Utterance],
    lm: str,
    lexicon: str = "",
    lm_weights: list[float] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
    word_scores: list[float] = (-1.0, 0.0, 1.0, 2.0),
    progress: bool = True,
) -> list[tuple[float, float, ErrorRates]]:
    """Beam-search WER on ``utterances`` for every (LM weight, word score) pair, best first.

    The acoustic model runs once; only the search is repeated. The recognizer's decoding config
    is left set to the best pair (with ``lm`` and ``lexicon``)."""
    outputs = utterance_log_probs(recognizer, utterances, progress=progress)
    references = [u.text for u in utterances]
    searched = dataclasses.replace(recognizer.config.decoding, lm=lm, lexicon=lexicon, method="beam")
    results = []
    for weight in lm_weights:
        for score in word_scores:
            decoder = recognizer.decoder(dataclasses.replace(searched, lm_weight=weight, word_score=score))
            hypotheses = [decoder(out[None], torch.tensor([len(out)]))[0] for out in outputs]
            results.append((weight, score, error_rates(references, hypotheses)))
    results.sort(key=lambda r: (r[2].wer, r[2].cer))
    best = dataclasses.replace(searched, lm_weight=results[0][0], word_score=results[0][1])
    recognizer.config = dataclasses.replace(recognizer.config, decoding=best)
    return results


def evaluate(
    recognizer: Recognizer,
    utterances: list[Utterance],
    output_path: str | Path | None = None,
    max_batch_seconds: float = 200.0,
    num_workers: int = 1,
    progress: bool = True,
    settings: dict | None = None,
    skip_bad: bool = False,
) -> ErrorRates:
    """Decode ``utterances`` and score them. With ``output_path`` write one JSON line per utterance
    (audio path, duration, speaker, reference, hypothesis, word errors) and, beside it, the
    ``.settings.json`` that ``asr report`` shows: ``settings`` (e.g. model and manifest paths), the
    backend, the decoding config, the date and the rates. With ``skip_bad`` an utterance whose
    audio cannot be read is left out of the score and the files, with a warning and a count."""
    decoded = decode_utterances(recognizer, utterances, max_batch_seconds, num_workers, progress, skip_bad)
    unread = sum(h is None for h in decoded)
    if unread:
        log.warning("%d of %d utterances left out: their audio could not be read", unread, len(utterances))
        if unread == len(utterances):
            raise ValueError("no utterance's audio could be read: nothing to score")
    utterances = [u for u, h in zip(utterances, decoded) if h is not None]
    hypotheses = [h for h in decoded if h is not None]
    references = [u.text for u in utterances]
    rates = error_rates(references, hypotheses)
    if output_path is not None:
        output_path = Path(output_path)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        with output_path.open("w", encoding="utf-8") as out:
            for utterance, hypothesis in zip(utterances, hypotheses):
                row = {
                    "audio_filepath": str(utterance.audio_filepath),
                    "duration": utterance.duration,
                    "speaker": utterance.speaker,
                    "reference": utterance.text,
                    "hypothesis": hypothesis,
                    "word_errors": utterance_errors(utterance.text, hypothesis),
                }
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        recorded = {
            **(settings or {}),
            "backend": recognizer.backend,
            "decoding": dataclasses.asdict(recognizer.config.decoding),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "rates": rates.as_dict(),
        }
        settings_path(output_path).write_text(json.dumps(recorded, indent=1) + "\n", encoding="utf-8")
    return rates
