"""Word and character error rates (jiwer)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import jiwer


@dataclass
class ErrorRates:
    """Corpus-level error rates (as fractions) and word-level edit counts."""

    wer: float
    cer: float
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int
    utterances: int

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"WER {100 * self.wer:.2f}% CER {100 * self.cer:.2f}% ({self.utterances} utterances)"


def error_rates(references: list[str], hypotheses: list[str]) -> ErrorRates:
    """WER and CER over all utterances (errors summed, then divided by the reference length)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no utterances to score")
    words = jiwer.process_words(references, hypotheses)
    chars = jiwer.process_characters(references, hypotheses)
    return ErrorRates(
        wer=words.wer,
        cer=chars.cer,
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        reference_words=words.substitutions + words.deletions + words.hits,
        utterances=len(references),
    )


def alignment_errors(chunks: list[jiwer.AlignmentChunk]) -> int:
    """Edits (substitutions + deletions + insertions) in one utterance's jiwer alignment: the one
    count ``asr evaluate``'s decode files and ``asr report``'s pages share."""
    return sum(
        max(c.ref_end_idx - c.ref_start_idx, c.hyp_end_idx - c.hyp_start_idx) for c in chunks if c.type != "equal"
    )


def utterance_errors(reference: str, hypothesis: str) -> int:
    """Word edits (substitutions + deletions + insertions) in one utterance."""
    return alignment_errors(jiwer.process_words(reference, hypothesis).alignments[0])
