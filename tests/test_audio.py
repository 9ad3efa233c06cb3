import numpy as np
import pytest
import soundfile as sf

from asr.audio import AudioError, audio_duration, load_audio

from .conftest import speech


@pytest.mark.parametrize(
    "fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_24"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")]
)
def test_formats_load_as_mono_16k(tmp_path, fmt, subtype):
    audio = speech("four five six", sample_rate=22050)
    stereo = np.stack([audio, 0.5 * audio], axis=1)
    path = tmp_path / f"speech.{fmt.lower()}"
    sf.write(path, stereo, 22050, format=fmt, subtype=subtype)
    loaded = load_audio(path, 16000)
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    expected = len(audio) * 16000 / 22050
    assert abs(len(loaded) - expected) < 0.06 * 16000  # codecs may pad a frame or two
    assert 0.05 < np.abs(loaded).max() <= 1.0
    assert audio_duration(path) == pytest.approx(len(audio) / 22050, abs=0.06)


def test_resampling_keeps_a_tone_in_place(tmp_path):
    t = np.arange(8000 * 2) / 8000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    path = tmp_path / "tone.wav"
    sf.write(path, tone, 8000)
    loaded = load_audio(path, 16000)
    assert len(loaded) == 32000
    spectrum = np.abs(np.fft.rfft(loaded))
    assert np.argmax(spectrum) * 16000 / len(loaded) == pytest.approx(440, abs=1)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: no such file"):
        load_audio(tmp_path / "nope.wav")


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file"):
        load_audio(path)


def test_zero_length(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav: zero-length audio"):
        load_audio(path)


def test_nan_samples(tmp_path):
    noise = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    noise[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, noise, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: audio contains NaN or infinite samples"):
        load_audio(path)


def test_a_long_file_is_resampled_across_read_blocks_as_if_in_one_piece(tmp_path):
    import soxr

    from asr import audio as audio_module

    rate = 44100
    samples = 3 * audio_module._BLOCK_FRAMES + 12345  # four blocks, the last one short
    t = np.arange(samples) / rate
    sweep = (0.4 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(
        np.float32
    )  # 200 Hz rising: no block is like the next
    path = tmp_path / "long.flac"
    sf.write(path, sweep, rate, subtype="PCM_24")
    loaded = load_audio(path, 16000)
    whole = soxr.resample(sf.read(path, dtype="float32")[0], rate, 16000, quality="HQ")
    assert abs(len(loaded) - len(whole)) <= 1 and len(loaded) == pytest.approx(samples * 16000 / rate, abs=2)
    n = min(len(loaded), len(whole))
    assert np.max(np.abs(loaded[:n] - whole[:n])) < 1e-3  # no click or gap at the block edges


def test_damaged_mp3_frames_give_one_warning_naming_the_file_not_the_decoders_lines(tmp_path):
    """libmpg123 writes a line to stderr for each damaged frame itself; they become one warning."""
    import subprocess
    import sys

    good = tmp_path / "good.mp3"
    sf.write(good, speech("seven three nine two one four"), 16000, format="MP3")
    damaged = bytearray(good.read_bytes())
    for i in range(2000, len(damaged) - 2000, 997):  # flip bytes inside frames, not the header
        damaged[i] ^= 0xFF
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(damaged)
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO)\n"
        "from asr.audio import load_audio\n"
        "for path in sys.argv[1:]: print(len(load_audio(path)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(good), str(bad)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split()) == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "libmpg123" not in lines[0].split(" (")[0], lines
    assert lines[0].startswith(f"WARNING:asr.audio:{bad}: ") and "damaged MP3 frame(s)" in lines[0]
