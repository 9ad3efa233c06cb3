"""Decoding a manifest and scoring it against its transcripts."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from pathlib import Path

import torch

from .audio import AudioError
from .data import Utterance
from .metrics import ErrorRates, error_rates, utterance_errors
from .recognizer import Recognizer
from .report import settings_path
from .results import Transcription
from .transcribe import model_outputs, speech_log_probs, transcribe_stream

log = logging.getLogger(__name__)


def decode_utterances(
    recognizer: Recognizer,
    utterances: list[Utterance],
    batch_size: int = 16,
    progress: bool = True,
    skip_bad: bool = False,
) -> list[str | None]:
    """What ``asr transcribe`` writes for each of ``utterances``, in their order: the same reading,
    chunking, silence gate, voice activity and decoder (:func:`asr.transcribe.transcribe_stream`),
    so that a score is the score of what users get. A file that cannot be read stops it with its
    one-line error (a score without it would mislead), or with ``skip_bad`` is logged and gets ``None``."""
    paths = [u.audio_filepath for u in utterances]
    hypotheses: list[str | None] = []
    for result in transcribe_stream(recognizer, paths, batch_size, progress=progress):
        if result.error and not skip_bad:
            raise AudioError(result.error)
        if result.error:
            log.warning("skipping %s", result.error)
        hypotheses.append(None if result.error else result.text)
    return hypotheses


def speech_outputs(
    recognizer: Recognizer, utterances: list[Utterance], batch_size: int = 16, progress: bool = True
) -> list[torch.Tensor]:
    """Each utterance's (frames, vocab) CTC log-probabilities as transcription's decoder sees them
    (non-speech frames blanked: :func:`asr.transcribe.speech_log_probs`), in input order."""
    config = recognizer.config.decoding
    outputs = []
    for item in model_outputs(recognizer, [u.audio_filepath for u in utterances], batch_size, progress=progress):
        if isinstance(item, Transcription):
            raise AudioError(item.error)
        outputs.append(speech_log_probs(recognizer, item.samples, item.log_probs, config, item.speech)[0])
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
    """Beam-search WER on ``utterances`` for every (LM weight, word score) pair, best first, of the
    words transcription would write (the same non-speech frames blanked).

    The acoustic model runs once; only the search is repeated. The recognizer's decoding config
    is left set to the best pair (with ``lm`` and ``lexicon``)."""
    outputs = speech_outputs(recognizer, utterances, progress=progress)
    references = [u.text for u in utterances]
    searched = dataclasses.replace(recognizer.config.decoding, lm=lm, lexicon=lexicon, method="beam")
    results = []
    for weight in lm_weights:
        for score in word_scores:
            decoder = recognizer.decoder(dataclasses.replace(searched, lm_weight=weight, word_score=score))
            words = [decoder.words(out[None], torch.tensor([len(out)]), recognizer.frame_seconds)[0] for out in outputs]
            hypotheses = [" ".join(w.word for w in utterance_words) for utterance_words in words]
            results.append((weight, score, error_rates(references, hypotheses)))
    results.sort(key=lambda r: (r[2].wer, r[2].cer))
    best = dataclasses.replace(searched, lm_weight=results[0][0], word_score=results[0][1])
    recognizer.config = dataclasses.replace(recognizer.config, decoding=best)
    return results


def evaluate(
    recognizer: Recognizer,
    utterances: list[Utterance],
    output_path: str | Path | None = None,
    batch_size: int = 16,
    progress: bool = True,
    settings: dict | None = None,
    skip_bad: bool = False,
) -> ErrorRates:
    """Transcribe ``utterances`` as ``asr transcribe`` does (:func:`decode_utterances`) and score
    them. With ``output_path`` write one JSON line per utterance
    (audio path, duration, speaker, reference, hypothesis, word errors) and, beside it, the
    ``.settings.json`` that ``asr report`` shows: ``settings`` (e.g. model and manifest paths), the
    backend, the decoding config, the date and the rates. With ``skip_bad`` an utterance whose
    audio cannot be read is left out of the score and the files, with a warning and a count."""
    decoded = decode_utterances(recognizer, utterances, batch_size, progress, skip_bad)
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
