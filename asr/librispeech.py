"""LibriSpeech-layout folders (``SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt`` beside the audio) to manifests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from .audio import AUDIO_SUFFIXES, audio_duration
from .data import write_manifest


def find_utterances(
    root: str | Path, include_speakers: set[str] | None = None, exclude_speakers: set[str] | None = None
) -> list[tuple[Path, str]]:
    """(audio path, transcript) for every utterance under ``root``, sorted by utterance id.

    ``include_speakers`` keeps only those speakers; ``exclude_speakers`` drops those.
    Raises ``ValueError`` when a transcript line has no audio file.
    """
    root = Path(root)
    found = []
    for transcript in sorted(root.rglob("*.trans.txt")):
        speaker = transcript.name.split("-")[0]
        if include_speakers is not None and speaker not in include_speakers:
            continue
        if exclude_speakers is not None and speaker in exclude_speakers:
            continue
        for number, line in enumerate(transcript.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            utterance_id, _, text = line.partition(" ")
            audio = next(
                (
                    transcript.parent / (utterance_id + ext)
                    for ext in AUDIO_SUFFIXES
                    if (transcript.parent / (utterance_id + ext)).exists()
                ),
                None,
            )
            if audio is None:
                raise ValueError(
                    f"{transcript}:{number}: no audio file for {utterance_id} ({'/'.join(AUDIO_SUFFIXES)})"
                )
            found.append((audio, text.strip()))
    if not found:
        raise ValueError(
            f"{root}: no LibriSpeech transcripts (*.trans.txt) found"
            + (" for the chosen speakers" if include_speakers or exclude_speakers else "")
        )
    return found


def make_manifest(
    root: str | Path,
    manifest: str | Path,
    include_speakers: set[str] | None = None,
    exclude_speakers: set[str] | None = None,
    workers: int = 8,
) -> int:
    """Write a JSON-lines manifest for ``root`` (durations read from headers, in parallel); return its size.

    Audio paths are written relative to the manifest's folder when they lie under it, else absolute.
    """
    manifest = Path(manifest).resolve()
    utterances = find_utterances(root, include_speakers, exclude_speakers)
    with ThreadPoolExecutor(workers) as pool:
        durations = list(
            tqdm(
                pool.map(audio_duration, [a for a, _ in utterances]),
                total=len(utterances),
                desc="durations",
                unit="file",
            )
        )
    records = []
    for (audio, text), duration in zip(utterances, durations):
        audio = audio.resolve()
        path = audio.relative_to(manifest.parent) if audio.is_relative_to(manifest.parent) else audio
        records.append(
            {
                "audio_filepath": str(path),
                "duration": round(duration, 4),
                "text": text.lower(),
                "id": audio.stem,
                "speaker": audio.stem.split("-")[0],
            }
        )
    write_manifest(manifest, records)
    return len(records)
