"""JSON-lines manifests, the audio dataset and the duration-capped batch sampler."""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .audio import AudioError, load_audio
from .files import atomic_write
from .augment import NoiseMixer, Reverberator, is_narrowband, narrowband, perturbation_speed, speed_perturb
from .text import OutOfVocabularyError, Vocabulary, normalize_text

log = logging.getLogger(__name__)


class ManifestError(ValueError):
    """A manifest line that cannot be used; the message names the file and line."""


@dataclass
class Utterance:
    """One manifest line: ``audio_filepath`` is resolved, ``text`` normalised."""

    audio_filepath: Path
    duration: float
    text: str
    line: int = 0
    speaker: str = ""  # the manifest's optional "speaker" field (reports group errors by it)


def _parse_line(raw: str, base: Path) -> Utterance:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    missing = [key for key in ("audio_filepath", "duration", "text") if key not in record]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    if not isinstance(record["audio_filepath"], str) or not record["audio_filepath"]:
        raise ValueError(f"audio_filepath must be a path (a non-empty string), not {record['audio_filepath']!r}")
    audio = Path(record["audio_filepath"])
    audio = audio if audio.is_absolute() else base / audio
    if not audio.is_file():
        raise ValueError(f"audio file {audio} does not exist")
    try:
        duration = float(record["duration"])
    except (TypeError, ValueError):
        raise ValueError(f"duration {record['duration']!r} is not a number") from None
    if not duration > 0 or not math.isfinite(duration):
        raise ValueError(f"duration {duration} is not positive")
    if not isinstance(record["text"], str):
        raise ValueError("text is not a string")
    text = normalize_text(record["text"])
    if not text:
        raise ValueError("empty text")
    return Utterance(audio, duration, text, speaker=str(record.get("speaker", "")))


def read_manifest(path: str | Path, vocabulary: Vocabulary | None = None, skip_bad: bool = False) -> list[Utterance]:
    """Read a JSON-lines manifest; relative audio paths resolve against the manifest's folder.

    A bad line (not JSON, missing fields, missing audio, empty text, characters outside
    ``vocabulary``) raises :class:`ManifestError` naming the line, or with ``skip_bad`` is
    logged and skipped, with the number skipped reported at the end.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    base = path.resolve().parent
    utterances: list[Utterance] = []
    skipped = 0
    oov: dict[str, int] = {}
    with path.open("rb") as lines:
        for number, raw_bytes in enumerate(lines, start=1):
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError:
                raw = None
            if raw is not None and not raw.strip():
                continue
            try:
                if raw is None:
                    raise ValueError("not UTF-8 text")
                utterance = _parse_line(raw, base)
                utterance.line = number
                if vocabulary is not None:
                    vocabulary.encode(utterance.text)
            except (ValueError, OutOfVocabularyError) as error:
                if isinstance(error, OutOfVocabularyError):
                    for ch, n in error.characters.items():
                        oov[ch] = oov.get(ch, 0) + n
                message = f"{path}:{number}: {error}"
                if not skip_bad:
                    raise ManifestError(message) from None
                log.warning("skipping %s", message)
                skipped += 1
                continue
            utterances.append(utterance)
    if skipped:
        summary = f"{path}: skipped {skipped} bad line(s) of {skipped + len(utterances)}"
        if oov:
            summary += "; characters not in the vocabulary: " + ", ".join(f"{c!r} x{n}" for c, n in sorted(oov.items()))
        log.warning(summary)
    if not utterances:
        raise ManifestError(f"{path}: no usable utterances")
    return utterances


def write_manifest(path: str | Path, records: Iterable[dict]) -> None:
    """Write ``records`` (``audio_filepath``, ``duration``, ``text``, ...) as JSON lines."""
    with atomic_write(path, text=True) as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


class AudioDataset(Dataset):
    """Items are (waveform float32 tensor, token ids, index, error); the loader does no feature work.
    An unreadable file gives an item with no waveform and its :class:`AudioError` message, so the
    process that consumes the batch decides (skip it, or stop with that one line), not the worker.

    Without a ``vocabulary`` (decoding only) the token ids are empty. With ``speeds`` (e.g.
    ``[0.9, 1.0, 1.1]``) each item is played at one of them, by resampling, which changes tempo
    and pitch together like a different speaker. The choice depends only on (``seed``,
    :attr:`epoch`, index), so it is the same in any worker and after a resume. So are the
    ``reverb`` room and the ``noise`` of each item, and the choice of the ``narrowband_probability``
    share of items that are band-limited to telephone bandwidth.
    """

    def __init__(
        self,
        utterances: list[Utterance],
        vocabulary: Vocabulary | None,
        sample_rate: int = 16000,
        speeds: list[float] | None = None,
        seed: int = 0,
        noise: NoiseMixer | None = None,
        narrowband_probability: float = 0.0,
        reverb: Reverberator | None = None,
    ):
        self.utterances = utterances
        self.reverb = reverb
        self.narrowband_probability = narrowband_probability
        self.noise = noise
        self.vocabulary = vocabulary
        self.sample_rate = sample_rate
        self.speeds = list(speeds or [])
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.utterances)

    def speed(self, index: int) -> float:
        """The speed factor of item ``index`` in the current epoch (1.0 without perturbation)."""
        return perturbation_speed(self.speeds, self.seed, self.epoch, index)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, torch.Tensor | None, int, str]:
        utterance = self.utterances[index % len(self.utterances)]  # a repeat's draw (DurationBatchSampler)
        try:
            audio = load_audio(utterance.audio_filepath, self.sample_rate)
        except AudioError as error:
            return None, None, index, str(error)
        audio = speed_perturb(audio, self.sample_rate, self.speed(index))
        if self.reverb is not None:
            audio = self.reverb(audio, self.epoch, index)  # before the noise: the room echoes the talker
        if self.noise is not None:
            audio = self.noise(audio, self.epoch, index)
        if is_narrowband(self.narrowband_probability, self.seed, self.epoch, index):
            audio = narrowband(audio, self.sample_rate)  # after the noise: the channel limits both
        ids = self.vocabulary.encode(utterance.text) if self.vocabulary is not None else []
        return torch.from_numpy(audio), torch.tensor(ids, dtype=torch.long), index, ""


@dataclass
class Batch:
    """Padded waveforms with their sample counts, and concatenated CTC targets."""

    waveforms: torch.Tensor  # (batch, max_samples)
    sample_counts: torch.Tensor  # (batch,)
    targets: torch.Tensor  # (sum of target lengths,)
    target_lengths: torch.Tensor  # (batch,)
    indices: list[int]
    errors: list[str] = field(default_factory=list)  # one message per unreadable file, left out of the batch

    def to(self, device: torch.device) -> "Batch":
        return Batch(
            self.waveforms.to(device, non_blocking=True),
            self.sample_counts.to(device),
            self.targets,  # CTC loss takes targets on the CPU too
            self.target_lengths,
            self.indices,
            self.errors,
        )


def collate(items: list[tuple[torch.Tensor | None, torch.Tensor | None, int, str]]) -> Batch:
    """Pad waveforms to the longest in the batch; unreadable items go to ``errors`` (the batch may
    then be empty)."""
    errors = [error for _, _, _, error in items if error]
    good = [(a, t, i) for a, t, i, error in items if not error]
    if not good:
        empty = torch.zeros(0, dtype=torch.long)
        return Batch(torch.zeros(0, 1), empty, empty, empty, [], errors)
    audio, tokens, indices = zip(*good)
    counts = torch.tensor([len(a) for a in audio], dtype=torch.long)
    waveforms = torch.nn.utils.rnn.pad_sequence(list(audio), batch_first=True)
    return Batch(waveforms, counts, torch.cat(tokens), torch.tensor([len(t) for t in tokens]), list(indices), errors)


def usable(batch: Batch, skip_bad: bool) -> bool:
    """Whether ``batch`` has audio to use: its unreadable files are logged and left out with
    ``skip_bad``, else the first raises :class:`AudioError` (one line, in this process)."""
    if batch.errors and not skip_bad:
        raise AudioError(batch.errors[0])
    for error in batch.errors:
        log.warning("skipping %s", error)
    return bool(batch.indices)


def ordered_batches(
    utterances: list[Utterance], sample_rate: int, max_batch_seconds: float, num_workers: int = 1
) -> DataLoader:
    """Padded audio batches of similar-length ``utterances`` at ``sample_rate``, in a fixed order,
    read in ``num_workers`` worker processes (for decoding: no targets, no augmentation)."""
    dataset = AudioDataset(utterances, vocabulary=None, sample_rate=sample_rate)
    longest = max(u.duration for u in utterances)
    sampler = DurationBatchSampler([u.duration for u in utterances], max(max_batch_seconds, longest), shuffle=False)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
    )


class DurationBatchSampler(Sampler[list[int]]):
    """Batches of similar-length utterances whose padded duration stays under ``max_batch_seconds``.

    Each epoch sorts the utterances by duration after a random jitter of up to ``jitter`` of
    their length (so neighbours mix from epoch to epoch, while padding stays small), cuts the
    order into batches whose size times their longest duration stays under the cap, and
    shuffles the batch order. The order depends only on (seed, epoch), never on the number of
    ranks: set :attr:`epoch` and :attr:`start_batch` (batches of the epoch already consumed by all
    ranks together) to resume mid-epoch, with any number of ranks. With ``world_size`` > 1 rank r
    takes batches start+r, start+r+world_size, ...; so that every rank runs the same number of
    steps, a rank left one short is handed its first batch again, which :attr:`real_batches` tells
    the training loop to give zero weight: every utterance counts once per epoch. With ``speeds``
    (speed perturbation, same seed as the dataset's) durations are those after perturbation. With
    ``sortagrad`` epoch 0 serves its batches shortest first instead of shuffled.

    With ``corpora`` (each utterance's corpus number) and ``weights`` (one per corpus) an epoch is
    not every utterance once but a weighted draw (:meth:`epoch_utterances`): its indices are then
    *draws*, ``index + k * len(durations)`` for an utterance's k-th repeat within the epoch, so that
    each repeat is augmented anew (:class:`AudioDataset` takes indices modulo its length).
    """

    def __init__(
        self,
        durations: list[float],
        max_batch_seconds: float,
        seed: int = 0,
        shuffle: bool = True,
        jitter: float = 0.1,
        rank: int = 0,
        world_size: int = 1,
        speeds: list[float] | None = None,
        sortagrad: bool = False,
        corpora: list[int] | None = None,
        weights: list[float] | None = None,
    ):
        if (corpora is None) != (weights is None):
            raise ValueError("corpora and weights go together")
        if corpora is not None and set(corpora) != set(range(len(weights))):
            raise ValueError(f"every one of the {len(weights)} corpora needs utterances")
        self.corpora, self.weights = corpora, weights
        self.sortagrad = sortagrad
        self.speeds = list(speeds or [])
        slowest = min(self.speeds, default=1.0)
        too_long = [d for d in durations if d / slowest > max_batch_seconds]
        if too_long:
            raise ValueError(f"{len(too_long)} utterance(s) are longer than max_batch_seconds={max_batch_seconds}")
        self.durations = durations
        self.max_batch_seconds = max_batch_seconds
        self.seed = seed
        self.shuffle = shuffle
        self.jitter = jitter
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0

    def epoch_utterances(self, epoch: int) -> list[int]:
        """The draws of ``epoch``: every index once, or with ``weights`` each corpus's share of the
        epoch's audio (the corpora's total duration), drawn from its utterances in a shuffled order
        (reshuffled when used up), seeded by (seed, epoch) alone."""
        if self.corpora is None:
            return list(range(len(self.durations)))
        rng = random.Random(f"{self.seed}/{epoch}/corpora")
        epoch_seconds = sum(self.durations)
        members: list[list[int]] = [[] for _ in self.weights]
        for index, corpus in enumerate(self.corpora):
            members[corpus].append(index)
        draws, repeats = [], {}
        for corpus, weight in enumerate(self.weights):
            target, taken, order = epoch_seconds * weight / sum(self.weights), 0.0, []
            while taken < target:
                if not order:
                    order = rng.sample(members[corpus], len(members[corpus]))
                index = order.pop()
                draws.append(index + repeats.get(index, 0) * len(self.durations))
                repeats[index] = repeats.get(index, 0) + 1
                taken += self.durations[index]
        return draws

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` (every rank's), in the order they are served."""
        rng = random.Random(self.seed * 1_000_003 + epoch)
        draws = self.epoch_utterances(epoch)
        size = len(self.durations)
        durations = [self.durations[i % size] / perturbation_speed(self.speeds, self.seed, epoch, i) for i in draws]
        sorted_epoch = self.sortagrad and epoch == 0
        if self.shuffle and not sorted_epoch:
            keys = [d * (1 + self.jitter * (2 * rng.random() - 1)) for d in durations]
        else:
            keys = list(durations)
        order = sorted(range(len(durations)), key=keys.__getitem__)
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0.0
        for position in order:
            candidate = max(longest, durations[position])
            if current and candidate * (len(current) + 1) > self.max_batch_seconds:
                batches.append(current)
                current, candidate = [], durations[position]
            current.append(draws[position])
            longest = candidate
        if current:
            batches.append(current)
        if self.shuffle and not sorted_epoch:
            rng.shuffle(batches)
        return batches

    def _my_batches(self) -> tuple[list[list[int]], int]:
        """This rank's batches from :attr:`start_batch` on, padded to the longest rank's count, and
        how many of them are real."""
        remaining = self.epoch_batches(self.epoch)[self.start_batch :]
        mine = remaining[self.rank :: self.world_size]
        per_rank = -(-len(remaining) // self.world_size)
        padding = [mine[0] if mine else remaining[0]] * (per_rank - len(mine)) if remaining else []
        return mine + padding, len(mine)

    @property
    def real_batches(self) -> int:
        """How many of the batches this rank serves (from :attr:`start_batch`) are not padding."""
        return self._my_batches()[1]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._my_batches()[0]

    def __len__(self) -> int:
        return len(self._my_batches()[0])
