import json
import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.augment import Reverberator, narrowband, perturbation_speed
from asr.data import AudioDataset, DurationBatchSampler, ManifestError, read_manifest
from asr.text import Vocabulary

from .conftest import speech, write_wav


@pytest.fixture
def manifest_dir(tmp_path):
    write_wav(tmp_path / "a.wav", speech("one two"))
    (tmp_path / "sub").mkdir()
    write_wav(tmp_path / "sub" / "b.wav", speech("three"))
    return tmp_path


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_manifest_relative_paths_resolve_against_its_folder(manifest_dir, monkeypatch, tmp_path_factory):
    manifest = _write(
        manifest_dir / "m.jsonl",
        [
            json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "One, two!"}),
            json.dumps({"audio_filepath": "sub/b.wav", "duration": 0.5, "text": "three"}),
        ],
    )
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    utterances = read_manifest(manifest, Vocabulary())
    assert [u.audio_filepath for u in utterances] == [manifest_dir / "a.wav", manifest_dir / "sub" / "b.wav"]
    assert [u.text for u in utterances] == ["one two", "three"]
    assert [u.line for u in utterances] == [1, 2]


BAD_LINES = {
    "missing audio": (
        json.dumps({"audio_filepath": "gone.wav", "duration": 1.0, "text": "one"}),
        "audio file .*gone.wav does not exist",
    ),
    "not json": ('{"audio_filepath": "a.wav", "duration": 1.0,', "not valid JSON"),
    "empty text": (json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": " ?! "}), "empty text"),
    "out of vocabulary": (
        json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "room 101"}),
        "characters not in the vocabulary: '1' x2, '0' x1",
    ),
    "missing field": (json.dumps({"audio_filepath": "a.wav", "text": "one"}), "missing field.*duration"),
}


@pytest.mark.parametrize("kind", BAD_LINES)
def test_bad_manifest_line_stops_with_its_line_number(manifest_dir, kind):
    bad, message = BAD_LINES[kind]
    good = json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "one two"})
    manifest = _write(manifest_dir / "m.jsonl", [good, good, bad, good])
    with pytest.raises(ManifestError, match=rf"m\.jsonl:3: {message}"):
        read_manifest(manifest, Vocabulary())


def test_skip_bad_warns_and_reports_how_many(manifest_dir, caplog):
    good = json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "one two"})
    lines = [good] + [bad for bad, _ in BAD_LINES.values()] + [good]
    manifest = _write(manifest_dir / "m.jsonl", lines)
    with caplog.at_level(logging.WARNING):
        utterances = read_manifest(manifest, Vocabulary(), skip_bad=True)
    assert [u.line for u in utterances] == [1, 7]
    assert f"skipped {len(BAD_LINES)} bad line(s) of 7" in caplog.text
    assert "'1' x2" in caplog.text  # the out-of-vocabulary characters are reported
    assert "m.jsonl:3: not valid JSON" in caplog.text


def _durations(n=300, seed=0):
    return list(np.random.default_rng(seed).uniform(0.5, 15.0, n))


def test_sampler_batches_stay_under_cap_and_cover_each_utterance_once():
    durations = _durations()
    sampler = DurationBatchSampler(durations, max_batch_seconds=40.0, seed=1)
    for epoch in range(3):
        sampler.epoch = epoch
        batches = list(sampler)
        for batch in batches:
            assert len(batch) * max(durations[i] for i in batch) <= 40.0
        assert Counter(i for b in batches for i in b) == Counter(range(len(durations)))


def test_sampler_padding_is_small_and_order_reproducible():
    durations = _durations()
    first = DurationBatchSampler(durations, 40.0, seed=1).epoch_batches(0)
    assert first == DurationBatchSampler(durations, 40.0, seed=1).epoch_batches(0)
    assert first != DurationBatchSampler(durations, 40.0, seed=1).epoch_batches(1)  # reshuffled each epoch
    assert first != DurationBatchSampler(durations, 40.0, seed=2).epoch_batches(0)
    padded = sum(len(b) * max(durations[i] for i in b) for b in first)
    assert 1 - sum(durations) / padded < 0.12


def test_sortagrad_serves_the_first_epoch_shortest_first_and_then_shuffles():
    durations = _durations()
    sampler = DurationBatchSampler(durations, 40.0, seed=1, sortagrad=True)
    first = sampler.epoch_batches(0)
    longest = [max(durations[i] for i in batch) for batch in first]
    assert longest == sorted(longest)
    assert Counter(i for b in first for i in b) == Counter(range(len(durations)))
    later = [max(durations[i] for i in batch) for batch in sampler.epoch_batches(1)]
    assert later != sorted(later)
    assert sampler.epoch_batches(1) == DurationBatchSampler(durations, 40.0, seed=1).epoch_batches(1)


def test_sampler_resumes_mid_epoch_and_shards_across_ranks():
    durations = _durations()
    sampler = DurationBatchSampler(durations, 40.0, seed=1)
    sampler.epoch = 2
    full = list(sampler)
    sampler.start_batch = 5
    assert list(sampler) == full[5:]
    ranks = [DurationBatchSampler(durations, 40.0, seed=1, rank=r, world_size=2) for r in range(2)]
    for r in ranks:
        r.epoch = 2
    shards = [list(r)[: r.real_batches] for r in ranks]
    assert len(ranks[0]) == len(ranks[1])  # padded to the same number of steps
    seen = sorted(i for s in shards for b in s for i in b)
    assert seen == list(range(len(durations)))  # every utterance once across ranks

    # 2 ranks take 3 steps each (6 batches), then 3 ranks resume from global batch 6
    first = [b for r in ranks for b in list(r)[:3]]
    resumed = [DurationBatchSampler(durations, 40.0, seed=1, rank=r, world_size=3) for r in range(3)]
    for r in resumed:
        r.epoch, r.start_batch = 2, 6
    rest = [b for r in resumed for b in list(r)[: r.real_batches]]
    assert sorted(i for b in first + rest for i in b) == list(range(len(durations)))


def test_sampler_caps_durations_after_speed_perturbation():
    durations = _durations()
    speeds = [0.9, 1.0, 1.1]
    sampler = DurationBatchSampler(durations, max_batch_seconds=40.0, seed=1, speeds=speeds)
    for epoch in range(2):
        played = [d / perturbation_speed(speeds, 1, epoch, i) for i, d in enumerate(durations)]
        assert len(set(round(p / d, 6) for p, d in zip(played, durations))) == 3
        for batch in sampler.epoch_batches(epoch):
            assert len(batch) * max(played[i] for i in batch) <= 40.0
        padded = sum(len(b) * max(played[i] for i in b) for b in sampler.epoch_batches(epoch))
        assert 1 - sum(played) / padded < 0.12


def test_sampler_refuses_utterances_longer_than_the_cap():
    with pytest.raises(ValueError, match="longer than max_batch_seconds"):
        DurationBatchSampler([1.0, 50.0], 40.0)


def _band_energy(audio: np.ndarray, low_hz: float, high_hz: float, sample_rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / sample_rate)
    return float(spectrum[(freqs >= low_hz) & (freqs < high_hz)].sum())


def test_narrowband_training_items_lose_the_band_above_4_khz_and_nothing_else(manifest_dir):
    utterances = read_manifest(
        _write(
            manifest_dir / "m.jsonl",
            [
                json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "one two"}),
            ],
        ),
        Vocabulary(),
    )
    original = AudioDataset(utterances, Vocabulary())[0][0].numpy()
    assert _band_energy(original, 4200, 8000) > 1e-3 * _band_energy(original, 0, 8000)  # speech has a high band to lose

    limited = AudioDataset(utterances, Vocabulary(), seed=3, narrowband_probability=1.0)[0][0].numpy()
    assert limited.shape == original.shape
    assert _band_energy(limited, 4200, 8000) < 1e-5 * _band_energy(original, 4200, 8000)
    assert _band_energy(limited, 0, 3500) == pytest.approx(_band_energy(original, 0, 3500), rel=0.01)
    assert np.array_equal(narrowband(original, 16000), limited)

    # about the share asked for, the same choice for an item in any worker, another in the next epoch
    dataset = AudioDataset(utterances * 200, Vocabulary(), seed=3, narrowband_probability=0.25)
    chosen = [not np.array_equal(dataset[i][0].numpy(), original) for i in range(200)]
    assert 30 <= sum(chosen) <= 70
    assert chosen == [not np.array_equal(dataset[i][0].numpy(), original) for i in range(200)]
    dataset.epoch = 1
    assert chosen != [not np.array_equal(dataset[i][0].numpy(), original) for i in range(200)]


def test_reverberant_training_items_are_the_room_applied_to_the_audio_a_share_of_the_time(manifest_dir):
    utterances = read_manifest(
        _write(manifest_dir / "m.jsonl", [json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "one"})]),
        Vocabulary(),
    )
    original = AudioDataset(utterances, Vocabulary())[0][0].numpy()
    room = Reverberator(1.0, [0.3, 0.6], seed=3)
    wet = AudioDataset(utterances, Vocabulary(), seed=3, reverb=room)[0][0].numpy()
    assert np.array_equal(wet, room(original, 0, 0)) and not np.array_equal(wet, original)
    dataset = AudioDataset(utterances * 100, Vocabulary(), seed=3, reverb=Reverberator(0.5, [0.3, 0.6], seed=3))
    assert 30 <= sum(not np.array_equal(dataset[i][0].numpy(), original) for i in range(100)) <= 70


def test_resample_manifest_writes_copies_at_the_rate_asked_with_their_manifest(manifest_dir, tmp_path):
    manifest = _write(
        manifest_dir / "m.jsonl",
        [
            json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "One, two!"}),
            json.dumps({"audio_filepath": "sub/b.wav", "duration": 0.5, "text": "three"}),
        ],
    )
    script = Path(__file__).parents[1] / "data_scripts" / "resample_manifest.py"
    out = tmp_path / "narrow"
    subprocess.run(
        [sys.executable, str(script), str(manifest), str(out), "--rate", "8000"], check=True, capture_output=True
    )
    copies = read_manifest(out / "manifest.jsonl", Vocabulary())
    assert [u.text for u in copies] == ["one two", "three"]
    for copy, original in zip(copies, read_manifest(manifest, Vocabulary())):
        info = sf.info(copy.audio_filepath)
        assert info.samplerate == 8000 and info.channels == 1
        assert copy.duration == pytest.approx(sf.info(original.audio_filepath).duration, abs=1e-3)
        assert _band_energy(sf.read(copy.audio_filepath)[0], 100, 3500, 8000) > 0


def test_weighted_corpora_get_their_share_of_each_epochs_audio_and_repeats_are_new_draws():
    durations = _durations()  # corpus 0
    corpora = [0] * len(durations) + [1] * 10
    durations = durations + [2.0] * 10  # corpus 1: 20 s, far less than its share below
    sampler = DurationBatchSampler(durations, 40.0, seed=1, corpora=corpora, weights=[1.0, 3.0])
    size, total = len(durations), sum(durations)
    seen = set()
    for epoch in range(30):
        draws = [i for batch in sampler.epoch_batches(epoch) for i in batch]
        assert sorted(draws) == sorted(sampler.epoch_utterances(epoch))
        assert len(set(draws)) == len(draws)  # a repeat is another draw: augmented anew
        seconds = [sum(durations[i % size] for i in draws if corpora[i % size] == c) for c in (0, 1)]
        assert seconds[1] == pytest.approx(0.75 * total, abs=2.0)  # overshoot: less than one utterance
        assert seconds[0] == pytest.approx(0.25 * total, abs=max(durations))
        seen |= {i % size for i in draws}
    assert seen == set(range(size))  # a sampled corpus's utterances all come round
    assert sampler.epoch_utterances(3) == sampler.epoch_utterances(3) != sampler.epoch_utterances(4)
    with pytest.raises(ValueError, match="3 corpora needs utterances"):
        DurationBatchSampler(durations, 40.0, corpora=corpora, weights=[1.0, 1.0, 1.0])


def test_a_dataset_item_of_a_repeat_draw_is_its_utterance_augmented_anew(manifest_dir):
    utterances = read_manifest(
        _write(manifest_dir / "m.jsonl", [json.dumps({"audio_filepath": "a.wav", "duration": 0.8, "text": "one two"})])
    )
    dataset = AudioDataset(utterances, Vocabulary(), speeds=[0.9, 1.0, 1.1], seed=3)
    items = [dataset[k] for k in range(12)]  # draws 0, 1, 2, ...: all the one utterance
    assert all(ids.tolist() == items[0][1].tolist() for _, ids, _, _ in items)
    assert len({len(audio) for audio, _, _, _ in items}) > 1  # played at different speeds
