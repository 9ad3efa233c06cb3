"""Decoding a manifest and scoring it against its transcripts."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .data import AudioDataset, DurationBatchSampler, Utterance, collate
from .metrics import ErrorRates, error_rates, utterance_errors
from .recognizer import Recognizer


def make_loader(dataset: AudioDataset, sampler: DurationBatchSampler, num_workers: int) -> DataLoader:
    """A loader that reads and pads audio in ``num_workers`` worker processes."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
    )


def decode_utterances(
    recognizer: Recognizer,
    utterances: list[Utterance],
    max_batch_seconds: float = 200.0,
    num_workers: int = 1,
    progress: bool = True,
) -> list[str]:
    """Greedy transcripts of ``utterances``, in their order (batched by length internally)."""
    dataset = AudioDataset(utterances, vocabulary=None, sample_rate=recognizer.sample_rate)
    longest = max(u.duration for u in utterances)
    sampler = DurationBatchSampler([u.duration for u in utterances], max(max_batch_seconds, longest), shuffle=False)
    hypotheses: list[str] = [""] * len(utterances)
    with tqdm(total=len(utterances), desc="decode", unit="utt", disable=not progress, leave=False) as bar:
        for batch in make_loader(dataset, sampler, num_workers):
            for index, text in zip(batch.indices, recognizer.decode(batch.waveforms, batch.sample_counts)):
                hypotheses[index] = text
            bar.update(len(batch.indices))
    return hypotheses


def evaluate(
    recognizer: Recognizer,
    utterances: list[Utterance],
    output_path: str | Path | None = None,
    max_batch_seconds: float = 200.0,
    num_workers: int = 1,
    progress: bool = True,
) -> ErrorRates:
    """Decode ``utterances`` and score them; with ``output_path`` write one JSON line per utterance
    (audio path, reference, hypothesis, word errors)."""
    hypotheses = decode_utterances(recognizer, utterances, max_batch_seconds, num_workers, progress)
    references = [u.text for u in utterances]
    if output_path is not None:
        output_path = Path(output_path)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        with output_path.open("w", encoding="utf-8") as out:
            for utterance, hypothesis in zip(utterances, hypotheses):
                row = {
                    "audio_filepath": str(utterance.audio_filepath),
                    "reference": utterance.text,
                    "hypothesis": hypothesis,
                    "word_errors": utterance_errors(utterance.text, hypothesis),
                }
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return error_rates(references, hypotheses)
