"""Speech corpora spoken by synthetic voices, made offline: utterances as jobs for eSpeak NG
(:mod:`asr.synthesis`) or the Piper voice (:mod:`asr.piper_voice`), run in fresh processes so that
the same jobs give byte-identical audio, and a corpus of any text (extra training data for a small
real corpus). The digits corpus (:mod:`asr.digits`) is made of these jobs too.
"""

from __future__ import annotations

import random
import zlib
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import librosa
import numpy as np
import soundfile as sf
from tqdm import tqdm

from .data import write_manifest
from .piper_voice import default_voice
from .synthesis import add_variant, random_variant, shutdown_engine, synthesize, voice_names

# LibriSpeech dev-clean speaks 14.5 characters per second (median), 18.4 (95th percentile), 21.6 at most.
MAX_CHARS_PER_SECOND = 20.0
ACCENTS = [v for v in voice_names(("en",)) if v != "en-Shaw"]  # en-Shaw is Shavian script, not an accent


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


def job_seed(seed: int, split: str, index: int) -> int:
    """eSpeak's and the added noise's seed for one utterance: from the corpus seed, split and index only."""
    return zlib.crc32(f"{seed}/{split}/{index}".encode())


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
                    seed=job_seed(seed, "synthetic", index),
                )
            )
            if neural_share and neural_rng.random() < neural_share:
                jobs[-1] = piper_job(jobs[-1].path, text, neural_rng, sample_rate, jobs[-1].seed)
    manifest = out_dir / "synthetic.jsonl"
    write_manifest(manifest, synthesize_jobs(jobs, workers, "synthesize"))
    return manifest
