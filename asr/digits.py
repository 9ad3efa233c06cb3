"""Corpora spoken by eSpeak NG voices, made offline: the embedded default (connected digits) and
synthetic speech for any text (extra training data for a small real corpus).

In the digits corpus train, dev and test use disjoint sets of voice variants (eSpeak's speaker
timbres), so dev and test voices are never heard in training; every English accent appears in each split.
"""

from __future__ import annotations

import os
import random
import zlib
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import librosa
import numpy as np
import soundfile as sf
from tqdm import tqdm

from .data import read_manifest, write_manifest
from .piper_voice import default_voice
from .synthesis import add_variant, random_variant, shutdown_engine, synthesize, variant_names, voice_names

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SPOKEN_DIGITS = frozenset(DIGIT_WORDS) | {"oh"}  # every word a digits model writes


def is_digit_text(text: str) -> bool:
    """Whether ``text`` (normalised) is one or more spoken digits and nothing else."""
    return bool(text.split()) and set(text.split()) <= SPOKEN_DIGITS


# LibriSpeech dev-clean speaks 14.5 characters per second (median), 18.4 (95th percentile), 21.6 at most.
MAX_CHARS_PER_SECOND = 20.0
ACCENTS = [v for v in voice_names(("en",)) if v != "en-Shaw"]  # en-Shaw is Shavian script, not an accent


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
    """Voice variants for train, dev and test, disjoint, drawn from a seeded shuffle."""
    variants = variant_names()
    random.Random(seed).shuffle(variants)
    n_test = max(1, round(test_share * len(variants)))
    n_dev = max(1, round(dev_share * len(variants)))
    return {
        "test": sorted(variants[:n_test]),
        "dev": sorted(variants[n_test : n_test + n_dev]),
        "train": sorted(variants[n_test + n_dev :]),
    }


# Utterances synthesized in one fresh process, in order: eSpeak NG keeps state from one call to the
# next, so a chunk's audio depends on the chunk alone, never on how many workers there are. Large,
# since each fresh process imports torch (a few seconds).
SYNTHESIS_CHUNK = 500


class SynthesisJob(NamedTuple):
    """One utterance to speak: both corpora are lists of these, run by :func:`synthesize_jobs`."""

    path: str  # the WAV file to write
    spoken: str  # the text, as eSpeak reads it ("." between sentences)
    voice: str  # accent+variant
    variant_definition: str  # a random variant's eSpeak definition ("" for one of eSpeak's own)
    rate: int  # words per minute
    pitch: int
    pitch_range: int
    sample_rate: int
    noise_snr_db: float  # light white noise added at this SNR (0: none)
    seed: int  # eSpeak's and the noise's


class PiperJob(NamedTuple):
    """One utterance for the Piper voice (:mod:`asr.piper_voice`) to speak."""

    path: str  # the WAV file to write
    spoken: str
    length_scale: float  # above 1: slower
    noise_scale: float  # the voice's variation
    noise_w: float  # the timing's variation
    sample_rate: int
    noise_snr_db: float
    seed: int  # the voice's noise and the added noise


def _make_utterance(job: SynthesisJob | PiperJob) -> dict:
    if isinstance(job, PiperJob):
        samples, rate = default_voice().synthesize(job.spoken, job.seed, job.length_scale, job.noise_scale, job.noise_w)
        return _write_utterance(job, samples, rate, "piper-joe", {"length_scale": round(job.length_scale, 3)})
    spoken, voice, rate = job.spoken, job.voice, job.rate  # rate slows down below
    if job.variant_definition:
        add_variant(voice.split("+")[1], job.variant_definition)
    options = {"pitch": job.pitch, "pitch_range": job.pitch_range, "seed": job.seed}
    samples, espeak_rate = synthesize(spoken, voice, rate=rate, **options)
    # Some variants clip syllables hard; slow those down until the speech is no faster than
    # people read (40 ms output frames cannot spell much faster speech).
    while len(spoken) / (len(samples) / espeak_rate) > MAX_CHARS_PER_SECOND and rate > 80:
        rate = int(rate * 0.85)
        samples, espeak_rate = synthesize(spoken, voice, rate=rate, **options)
    return _write_utterance(job, samples, espeak_rate, voice, {"rate": rate})


def _write_utterance(job: SynthesisJob | PiperJob, samples: np.ndarray, rate: int, voice: str, extra: dict) -> dict:
    """Resample to the corpus rate, add the job's light noise, write the WAV; its manifest record."""
    samples = librosa.resample(samples, orig_sr=rate, target_sr=job.sample_rate, res_type="soxr_hq")
    if job.noise_snr_db > 0:  # light white noise so that silence is never digital zero
        rng = np.random.default_rng(job.seed)
        power = float(np.mean(samples**2)) + 1e-10
        noise = rng.normal(0, np.sqrt(power / 10 ** (job.noise_snr_db / 10)), samples.shape)
        samples = samples + noise.astype(np.float32)
    samples = np.clip(samples, -1, 1)
    sf.write(job.path, samples, job.sample_rate, subtype="PCM_16")
    return {
        "audio_filepath": str(Path(job.path).relative_to(Path(job.path).parents[2])),
        "duration": round(len(samples) / job.sample_rate, 4),
        "text": " ".join(job.spoken.replace(".", " ").split()),
        "voice": voice,
        "speaker": voice,
        **extra,
    }


def _make_chunk(jobs: list[SynthesisJob | PiperJob]) -> list[dict]:
    try:
        return [_make_utterance(job) for job in jobs]
    finally:
        shutdown_engine()  # the worker process then ends without running atexit


def synthesize_jobs(jobs: list[SynthesisJob | PiperJob], workers: int, desc: str) -> list[dict]:
    """Run :func:`_make_utterance` on ``jobs`` in chunks of :data:`SYNTHESIS_CHUNK`, each chunk in a
    fresh process (eSpeak NG has global state): the same jobs give byte-identical audio whatever
    ``workers`` is. Returns the manifest records in job order."""
    chunks = [jobs[i : i + SYNTHESIS_CHUNK] for i in range(0, len(jobs), SYNTHESIS_CHUNK)]
    records: list[dict] = []
    with (
        get_context("spawn").Pool(workers, maxtasksperchild=1) as pool,
        tqdm(total=len(jobs), desc=desc, unit="utt") as bar,
    ):
        for chunk_records in pool.imap(_make_chunk, chunks):
            records += chunk_records
            bar.update(len(chunk_records))
    return records


def _job_seed(seed: int, split: str, index: int) -> int:
    """eSpeak's and the added noise's seed for one utterance: from the corpus seed, split and index only."""
    return zlib.crc32(f"{seed}/{split}/{index}".encode())


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

    The same arguments give byte-identical audio and manifests, whatever ``workers`` is.
    """
    out_dir = Path(out_dir)
    real = real_records(real_manifest, out_dir) * real_copies if real_manifest and train_utterances > 0 else []
    variants = split_variants(seed)
    rng = random.Random(seed)
    jobs_by_split = {}
    for spec in (
        DigitsSpec("train", train_utterances, variants["train"]),
        DigitsSpec("dev", dev_utterances, variants["dev"]),
        DigitsSpec("test", test_utterances, variants["test"]),
    ):
        if spec.utterances <= 0:
            continue
        (out_dir / "wavs" / spec.name).mkdir(parents=True, exist_ok=True)
        jobs = []
        for i in range(spec.utterances):
            accent, definition = rng.choice(ACCENTS), ""
            if spec.name == "train" and rng.random() < random_voice_share:
                definition = random_variant(rng)
                voice = f"{accent}+random{i:05d}"
            else:
                voice = f"{accent}+{rng.choice(spec.variants)}"
            jobs.append(  # the keywords in field order: each draws from rng in this order
                SynthesisJob(
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
                    seed=_job_seed(seed, spec.name, i),
                )
            )
        if spec.name == "train":
            jobs += piper_jobs(out_dir / "wavs" / "train", neural_utterances, seed, sample_rate)
        jobs_by_split[spec.name] = jobs
    manifests = {}
    for name, jobs in jobs_by_split.items():
        manifests[name] = out_dir / f"{name}.jsonl"
        records = synthesize_jobs(jobs, workers, f"synthesize {name}")
        write_manifest(manifests[name], records + (real if name == "train" else []))
    return manifests


def piper_jobs(folder: Path, count: int, seed: int, sample_rate: int) -> list[PiperJob]:
    """``count`` strings of 1 to 7 digits for the Piper voice, each at its own speed and variation,
    drawn from their own seeded generator: the eSpeak utterances are the same with or without them."""
    rng = random.Random(f"{seed}/piper")
    jobs = []
    for i in range(count):
        path, spoken = str(folder / f"piper-{i:05d}.wav"), digit_string(rng, 1, 7)
        jobs.append(piper_job(path, spoken, rng, sample_rate, _job_seed(seed, "piper", i)))
    return jobs


def piper_job(path: str, spoken: str, rng: random.Random, sample_rate: int, seed: int) -> PiperJob:
    """The Piper voice saying ``spoken`` at a speed and variation drawn from ``rng``."""
    return PiperJob(  # the keywords in field order: each draws from rng in this order
        path=path,
        spoken=spoken,
        length_scale=rng.uniform(0.8, 1.4),
        noise_scale=rng.uniform(0.4, 0.9),
        noise_w=rng.uniform(0.5, 1.1),
        sample_rate=sample_rate,
        noise_snr_db=rng.uniform(25, 45),
        seed=seed,
    )


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


def make_synthetic_corpus(
    texts: list[str],
    out_dir: str | Path,
    copies: int = 1,
    seed: int = 0,
    sample_rate: int = 16000,
    workers: int = 2,
    neural_share: float = 0.0,
) -> Path:
    """Speak each of ``texts`` ``copies`` times, each time with a random accent, voice variant, rate
    and pitch, into ``out_dir/wavs/synthetic/``; return the manifest ``out_dir/synthetic.jsonl``.
    ``neural_share`` of the utterances are spoken by the Piper voice (:mod:`asr.piper_voice`)
    instead, at a random speed and variation, drawn apart: the others keep the eSpeak voices and
    settings they would have without it.

    Synthetic speech is clean and consistent: short phrases of it (see data_scripts/synthesize_text.py
    --phrase-words) got a character model off CTC's blank plateau where an hour or two of real
    speech alone did not (whole synthetic sentences did not). Texts should be lower-case words.
    """
    out_dir = Path(out_dir)
    (out_dir / "wavs" / "synthetic").mkdir(parents=True, exist_ok=True)
    if not 0 <= neural_share <= 1:
        raise ValueError(f"neural_share must be from 0 to 1, not {neural_share}")
    rng, neural_rng = random.Random(seed), random.Random(f"{seed}/piper")
    jobs: list[SynthesisJob | PiperJob] = []
    for copy in range(copies):
        for i, text in enumerate(texts):
            if not text.strip():
                continue
            index = copy * len(texts) + i
            jobs.append(  # the keywords in field order: each draws from rng in this order
                SynthesisJob(
                    path=str(out_dir / "wavs" / "synthetic" / f"synthetic-{index:06d}.wav"),
                    spoken=text,
                    voice=f"{rng.choice(ACCENTS)}+random{index:06d}",
                    variant_definition=random_variant(rng),
                    rate=rng.randint(110, 170),
                    pitch=rng.randint(20, 80),
                    pitch_range=rng.randint(20, 80),
                    sample_rate=sample_rate,
                    noise_snr_db=rng.uniform(25, 45),
                    seed=_job_seed(seed, "synthetic", index),
                )
            )
            if neural_share and neural_rng.random() < neural_share:
                jobs[-1] = piper_job(jobs[-1].path, text, neural_rng, sample_rate, jobs[-1].seed)
    manifest = out_dir / "synthetic.jsonl"
    write_manifest(manifest, synthesize_jobs(jobs, workers, "synthesize"))
    return manifest
