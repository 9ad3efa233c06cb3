"""The embedded default's corpus, made offline: connected digits spoken by eSpeak NG voices and
the Piper voice (jobs of :mod:`asr.speech_corpus`), with recordings of people listed beside them.

In the digits corpus train, dev and test use disjoint sets of voice variants (eSpeak's speaker
timbres), so dev and test voices are never heard in training; every English accent appears in each split.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np

from .data import read_manifest, write_manifest
from .speech_corpus import ACCENTS, PiperJob, SynthesisJob, job_seed, piper_job, synthesize_jobs
from .synthesis import random_variant, robotic_lines, synthesize, variant_names

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SPOKEN_DIGITS = frozenset(DIGIT_WORDS) | {"oh"}  # every word a digits model writes


def is_digit_text(text: str) -> bool:
    """Whether ``text`` (normalised) is one or more spoken digits and nothing else."""
    return bool(text.split()) and set(text.split()) <= SPOKEN_DIGITS


@dataclass
class DigitsSpec:
    """What one split of the corpus holds."""

    name: str
    utterances: int
    variants: list[str]


def digit_string(rng: random.Random, min_digits: int = 2, max_digits: int = 6) -> str:
    """A random digit string in words; zero is said as "oh" about half the time."""
    words = []
    for _ in range(rng.randint(min_digits, max_digits)):
        digit = rng.randrange(10)
        words.append("oh" if digit == 0 and rng.random() < 0.5 else DIGIT_WORDS[digit])
    return " ".join(words)


def split_variants(seed: int, dev_share: float = 0.1, test_share: float = 0.15) -> dict[str, list[str]]:
    """Voice variants for train, dev and test, disjoint, drawn from a seeded shuffle; a larger
    ``dev_share`` moves training variants to dev and leaves the test variants as they are."""
    variants = variant_names()
    random.Random(seed).shuffle(variants)
    n_test = max(1, round(test_share * len(variants)))
    n_dev = max(1, round(dev_share * len(variants)))
    return {
        "test": sorted(variants[:n_test]),
        "dev": sorted(variants[n_test : n_test + n_dev]),
        "train": sorted(variants[n_test + n_dev :]),
    }


def separately_spoken_digits(
    seed: int = 7,
    count: int = 12,
    pause_seconds: float = 0.5,
    sample_rate: int = 16000,
    voice: str = "en-US",
    digits: tuple[int, int] = (1, 1),
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Digit words (or strings of ``digits`` words) synthesized one piece at a time, each trimmed to
    its sound, joined with pauses (and light noise, -60 dBFS, throughout): the audio and each
    piece's true (text, start, end) in seconds. A check for word timings: where each piece is is
    known to the sample."""
    rng = random.Random(seed)
    pause = np.zeros(round(pause_seconds * sample_rate), np.float32)
    pieces, truth, samples_so_far = [pause], [], len(pause)
    for word in [digit_string(rng, *digits) for _ in range(count)]:
        audio, rate = synthesize(word, voice, rate=140, seed=seed)  # eSpeak's jitter seeded: the same audio each call
        audio, _ = librosa.effects.trim(librosa.resample(audio, orig_sr=rate, target_sr=sample_rate), top_db=40)
        truth.append((word, samples_so_far / sample_rate, (samples_so_far + len(audio)) / sample_rate))
        pieces += [audio, pause]
        samples_so_far += len(audio) + len(pause)
    audio = np.concatenate(pieces)
    return audio + np.random.default_rng(seed).normal(0, 1e-3, len(audio)).astype(np.float32), truth


def make_digits_corpus(
    out_dir: str | Path,
    train_utterances: int = 6000,
    dev_utterances: int = 200,
    test_utterances: int = 500,
    seed: int = 0,
    sample_rate: int = 16000,
    workers: int = 2,
    random_voice_share: float = 0.5,
    max_groups: int = 1,
    min_digits: int = 2,
    neural_utterances: int = 0,
    real_manifest: str | Path | None = None,
    real_copies: int = 1,
    dev_share: float = 0.1,
    robotic_share: float = 0.0,
) -> dict[str, Path]:
    """Synthesize the corpus into ``out_dir`` (``wavs/<split>/*.wav`` and ``<split>.jsonl``); return the manifests.

    ``random_voice_share`` of the training utterances use a freshly drawn random voice variant
    (see :func:`asr.synthesis.random_variant`) instead of one of eSpeak's own training variants:
    many more voices to learn from, while dev and test keep eSpeak's held-out variants.

    A digit string is 2 to 6 digits long, in training ``min_digits`` to 6 (1: isolated digits too).
    With ``max_groups`` > 1 an utterance holds 1 to ``max_groups`` digit strings spoken as separate
    sentences (with a pause between), so that a model also learns to carry on after a pause.

    ``neural_utterances`` more training utterances are spoken by a neural voice (:func:`piper_jobs`);
    ``real_manifest``'s recordings of people saying digits are listed ``real_copies`` times after
    them (each copy augmented anew in training): synthetic voices alone do not teach a model people.

    ``robotic_share`` of the random voices are made robotic too (:func:`asr.synthesis.robotic_lines`),
    drawn from their own seeded generator: the other utterances stay the same.

    ``dev_share``: see :func:`split_variants`. The same arguments give byte-identical audio and
    manifests, whatever ``workers`` is.
    """
    out_dir = Path(out_dir)
    real = real_records(real_manifest, out_dir) * real_copies if real_manifest and train_utterances > 0 else []
    variants = split_variants(seed, dev_share)
    rng, robotic_rng = random.Random(seed), random.Random(f"{seed}/robotic")
    jobs_by_split = {}
    for spec in (
        DigitsSpec("train", train_utterances, variants["train"]),
        DigitsSpec("dev", dev_utterances, variants["dev"]),
        DigitsSpec("test", test_utterances, variants["test"]),
    ):
        if spec.utterances <= 0:
            continue
        (out_dir / "wavs" / spec.name).mkdir(parents=True, exist_ok=True)
        shares = (random_voice_share, robotic_share)
        jobs = [
            espeak_job(spec, i, out_dir, (rng, robotic_rng), shares, min_digits, max_groups, sample_rate, seed)
            for i in range(spec.utterances)
        ]
        if spec.name == "train":
            jobs += piper_jobs(out_dir / "wavs" / "train", neural_utterances, seed, sample_rate)
        jobs_by_split[spec.name] = jobs
    manifests = {}
    for name, jobs in jobs_by_split.items():
        manifests[name] = out_dir / f"{name}.jsonl"
        records = synthesize_jobs(jobs, workers, f"synthesize {name}")
        write_manifest(manifests[name], records + (real if name == "train" else []))
    return manifests


def espeak_job(
    spec: DigitsSpec,
    i: int,
    out_dir: Path,
    generators: tuple[random.Random, random.Random],
    shares: tuple[float, float],
    min_digits: int,
    max_groups: int,
    sample_rate: int,
    seed: int,
) -> SynthesisJob:
    """Utterance ``i`` of split ``spec`` of the corpus of ``seed``, drawn from the corpus's generator
    (and the robotic voices' own): ``shares`` are the random-voice and robotic shares."""
    (rng, robotic_rng), (random_voice_share, robotic_share) = generators, shares
    accent, definition = rng.choice(ACCENTS), ""
    if spec.name == "train" and rng.random() < random_voice_share:
        definition = random_variant(rng)
        if robotic_share and robotic_rng.random() < robotic_share:
            definition += robotic_lines(robotic_rng)
        voice = f"{accent}+random{i:05d}"
    else:
        voice = f"{accent}+{rng.choice(spec.variants)}"
    return SynthesisJob(  # the keywords in field order: each draws from rng in this order
        path=str(out_dir / "wavs" / spec.name / f"{spec.name}-{i:05d}.wav"),
        spoken=". ".join(
            digit_string(rng, min_digits if spec.name == "train" else 2)
            for _ in range(rng.randint(1, max_groups) if max_groups > 1 else 1)
        ),
        voice=voice,
        variant_definition=definition,
        rate=rng.randint(100, 180),
        pitch=rng.randint(20, 80),
        pitch_range=rng.randint(20, 80),
        sample_rate=sample_rate,
        noise_snr_db=rng.uniform(25, 45),
        seed=job_seed(seed, spec.name, i),
    )


def piper_jobs(folder: Path, count: int, seed: int, sample_rate: int) -> list[PiperJob]:
    """``count`` strings of 1 to 7 digits for the Piper voice, each at its own speed and variation,
    drawn from their own seeded generator: the eSpeak utterances are the same with or without them."""
    rng = random.Random(f"{seed}/piper")
    jobs = []
    for i in range(count):
        path, spoken = str(folder / f"piper-{i:05d}.wav"), digit_string(rng, 1, 7)
        jobs.append(piper_job(path, spoken, rng, sample_rate, job_seed(seed, "piper", i)))
    return jobs


def real_records(manifest: str | Path, out_dir: str | Path) -> list[dict]:
    """The records of ``manifest`` with audio paths relative to ``out_dir`` (where the corpus
    manifests are written), checked as any training manifest is."""
    utterances = read_manifest(manifest)
    base = Path(out_dir).resolve()
    return [
        {
            "audio_filepath": os.path.relpath(u.audio_filepath.resolve(), base),
            "duration": u.duration,
            "text": u.text,
            "speaker": u.speaker,
        }
        for u in utterances
    ]
