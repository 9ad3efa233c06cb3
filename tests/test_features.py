import math

import librosa
import numpy as np
import torch

from asr.config import FeatureConfig, SpecAugmentConfig
from asr.features import GlobalNormalization, LogMel, SpecAugment, warp_frequencies, warped_mel_positions

from .conftest import speech


def test_log_mel_matches_librosa():
    audio = speech("seven three oh nine")
    config = FeatureConfig()
    features, lengths = LogMel(config)(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
    reference = librosa.feature.melspectrogram(
        y=audio,
        sr=16000,
        n_fft=512,
        win_length=400,
        hop_length=160,
        n_mels=80,
        power=2.0,
        center=True,
        pad_mode="reflect",
    )
    reference = np.log(reference + 1e-6).T
    assert features.shape == (1, *reference.shape)
    assert lengths.item() == reference.shape[0]
    # compare where there is energy: far below it, float32 rounding dominates the log
    loud = reference > np.log(1e-4)
    assert loud.mean() > 0.3
    np.testing.assert_allclose(features[0].numpy()[loud], reference[loud], atol=2e-3)


def test_frame_counts_of_padded_batch_match_each_utterance_alone():
    frontend = LogMel(FeatureConfig())
    short, long = speech("one"), speech("one two three four")
    batch = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(short), torch.from_numpy(long)], batch_first=True)
    features, lengths = frontend(batch, torch.tensor([len(short), len(long)]))
    alone, alone_length = frontend(torch.from_numpy(short)[None], torch.tensor([len(short)]))
    assert lengths[0] == alone_length[0] == alone.shape[1]
    # away from the end (where reflect padding differs), padding does not change the features
    n = alone_length.item() - 2
    torch.testing.assert_close(features[0, :n], alone[0, :n], atol=1e-4, rtol=1e-4)


def test_global_normalization_gives_zero_mean_unit_variance():
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.normal(3.0, 2.0, size=(5000, 80)).astype(np.float32))
    norm = GlobalNormalization(80)
    norm.set_statistics(frames.sum(0), (frames**2).sum(0), frames.shape[0])
    out = norm(frames)
    assert out.mean(0).abs().max() < 1e-3
    assert (out.std(0) - 1).abs().max() < 1e-2
    assert set(norm.state_dict()) == {"mean", "std"}  # saved with the model's weights
    assert norm.empty_bins() == []


def test_bins_the_training_audio_left_at_the_log_floor_read_zero_whatever_the_input_holds():
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.normal(-9.0, 3.0, size=(5000, 80)).astype(np.float32))
    frames[:, 70:] = math.log(1e-6) + torch.from_numpy(rng.normal(0, 0.01, size=(5000, 10)).astype(np.float32))
    norm = GlobalNormalization(80)
    norm.set_statistics(frames.sum(0), (frames**2).sum(0), frames.shape[0])
    assert norm.empty_bins() == list(range(70, 80))
    full_band = frames.clone()
    full_band[:, 70:] = -10.0  # speech energy where training had none: 400 deviations away before
    out = norm(full_band)
    assert torch.equal(out[:, 70:], torch.zeros_like(out[:, 70:]))
    assert torch.equal(out[:, :70], norm(frames)[:, :70])


def test_specaugment_masks_only_in_training():
    torch.manual_seed(0)
    augment = SpecAugment(SpecAugmentConfig(freq_masks=2, freq_mask_width=10, time_masks=2, time_mask_width=10))
    features = torch.randn(4, 200, 80) + 5
    augment.train()
    masked = augment(features)
    assert masked.shape == features.shape
    zeros = (masked == 0).float().mean().item()
    assert 0 < zeros < 0.5
    augment.eval()
    assert torch.equal(augment(features), features)


def test_vocal_tract_length_perturbation_moves_a_tone_as_scaling_its_frequency_does():
    config = FeatureConfig()
    frontend = LogMel(config)
    time = np.arange(16000) / 16000

    def peak_bin(features: torch.Tensor) -> float:  # the centre of mass of the strongest bins, in bins
        profile = features[0].mean(0)
        top = torch.softmax(4 * profile, 0)
        return float((top * torch.arange(len(profile))).sum())

    def tone(hz: float) -> torch.Tensor:
        audio = torch.from_numpy(np.sin(2 * np.pi * hz * time).astype(np.float32))[None]
        return frontend(audio, torch.tensor([16000]))[0]

    features = tone(1500.0)
    assert torch.allclose(warp_frequencies(features, warped_mel_positions(torch.ones(1), config)), features, atol=1e-5)
    for factor in (0.9, 1.12):
        warped = warp_frequencies(features, warped_mel_positions(torch.tensor([factor]), config))
        assert abs(peak_bin(warped) - peak_bin(tone(1500.0 * factor))) < 0.5
        assert abs(peak_bin(warped) - peak_bin(features)) > 2  # a real move: 1500 Hz is 2-3 bins from either

    augment = SpecAugment(SpecAugmentConfig(freq_masks=0, time_masks=0, freq_warp=0.2), config)
    torch.manual_seed(0)
    batch = features.expand(6, -1, -1)
    augment.train()
    peaks = [peak_bin(warped[None]) for warped in augment(batch)]
    assert len({round(p, 3) for p in peaks}) == 6  # a factor of its own for each utterance
    augment.eval()
    assert torch.equal(augment(batch), batch)
