"""Log-mel features, global normalisation and SpecAugment, computed in batches on the model's device."""

from __future__ import annotations

import math

import librosa
import numpy as np
import torch
import torchaudio
from torch import nn

from .config import FeatureConfig, SpecAugmentConfig

_LOG_FLOOR = 1e-6


class LogMel(nn.Module):
    """Waveforms (batch, samples) -> log-mel features (batch, frames, n_mels) and frame counts."""

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.hop_length = round(config.sample_rate * config.hop_ms / 1000)
        win_length = round(config.sample_rate * config.window_ms / 1000)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=win_length,
            hop_length=self.hop_length,
            n_mels=config.n_mels,
            power=2.0,
            center=True,
            pad_mode="reflect",
            norm="slaney",
            mel_scale="slaney",
        )

    def frame_counts(self, sample_counts: torch.Tensor) -> torch.Tensor:
        """Frames that ``sample_counts`` samples give (centred frames: n // hop + 1)."""
        return torch.div(sample_counts, self.hop_length, rounding_mode="floor") + 1

    def reflect_padding(self, waveforms: torch.Tensor, sample_counts: torch.Tensor) -> torch.Tensor:
        """Fill the half window after each waveform's end with its reflection, as the STFT does at
        the end of a batch, so that a waveform's frames do not depend on its batch-mates."""
        half = self.mel.spectrogram.n_fft // 2
        positions = torch.arange(waveforms.shape[1], device=waveforms.device)[None, :]
        counts = sample_counts.to(waveforms.device)[:, None]
        mirrored = (2 * (counts - 1) - positions).clamp(0, waveforms.shape[1] - 1)
        inside = (positions >= counts) & (positions < counts + half) & (mirrored >= 0)
        return torch.where(inside, waveforms.gather(1, mirrored.expand_as(waveforms)), waveforms)

    @torch.autocast("cuda", enabled=False)  # the FFT and log want float32
    def forward(self, waveforms: torch.Tensor, sample_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.mel.spectrogram.n_fft // 2
        if waveforms.shape[1] <= half:  # the STFT's reflect padding needs more samples than half a window
            waveforms = torch.nn.functional.pad(waveforms, (0, half + 1 - waveforms.shape[1]))
        power = self.mel(self.reflect_padding(waveforms.float(), sample_counts))  # (batch, n_mels, frames)
        features = torch.log(power + _LOG_FLOOR).transpose(1, 2)
        return features, self.frame_counts(sample_counts)


def padding_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """(batch, max_length) bool, True where a position lies beyond its sequence's length."""
    return torch.arange(max_length, device=lengths.device)[None, :] >= lengths[:, None]


# A mel bin whose mean log-power over the training frames lies within this many nats of the log
# floor holds next to nothing in nearly every frame: above 6 kHz in LibriSpeech's MP3s (0.0 there),
# above the cut in band-limited 16-bit WAVs (0.1: quantisation noise); 0.9 in the MP3s' band-edge
# bin, which still holds speech, and 3-10 in bins with speech throughout.
EMPTY_BIN_MARGIN = 0.5


class GlobalNormalization(nn.Module):
    """Subtracts the training set's per-bin mean and divides by its standard deviation.

    The statistics are buffers, so they are saved with the model's weights. A bin the training
    audio left empty (:data:`EMPTY_BIN_MARGIN`) gets an infinite deviation, so it reads 0 whatever
    the input holds there: a model trained on band-limited audio hears full-band audio as if it
    were band-limited, instead of meeting values hundreds of deviations from anything it heard.
    """

    def __init__(self, n_mels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std

    @torch.no_grad()
    def set_statistics(self, total: torch.Tensor, total_sq: torch.Tensor, count: int) -> None:
        """Set mean/std from per-bin sums of values and of squared values over ``count`` frames."""
        mean = total / count
        std = (total_sq / count - mean**2).clamp_min(1e-8).sqrt()
        self.mean.copy_(mean)
        self.std.copy_(torch.where(mean < math.log(_LOG_FLOOR) + EMPTY_BIN_MARGIN, torch.inf, std))

    def empty_bins(self) -> list[int]:
        """The mel bins this model ignores: left empty by its training audio."""
        return torch.isinf(self.std).nonzero().flatten().tolist()


def warped_mel_positions(factors: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """For each of ``factors`` (batch,), the fractional mel bin that each bin reads from (batch, n_mels)
    when the frequency axis is scaled by that factor (VTLP): the bin centred at f Hz takes the value
    at f / factor, so a factor above 1 moves formants up, as a shorter vocal tract does. Bins that
    would read beyond the first or last bin read that bin."""
    centers = librosa.mel_frequencies(config.n_mels + 2, fmin=0.0, fmax=config.sample_rate / 2)[1:-1]  # Slaney
    mel_step = librosa.hz_to_mel(config.sample_rate / 2) / (config.n_mels + 1)  # the centres' even spacing
    sources = centers[None, :] / factors.cpu().double().numpy()[:, None]
    positions = librosa.hz_to_mel(sources) / mel_step - 1
    return torch.from_numpy(np.clip(positions, 0, config.n_mels - 1)).float()


def warp_frequencies(features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``features`` (batch, frames, n_mels) read at fractional bins ``positions`` (batch, n_mels),
    interpolating linearly between neighbouring bins."""
    positions = positions.to(features.device)
    below = positions.floor().long()
    above = (below + 1).clamp(max=features.shape[2] - 1)
    weight = (positions - below)[:, None, :]
    index = below[:, None, :].expand(-1, features.shape[1], -1)
    upper = above[:, None, :].expand(-1, features.shape[1], -1)
    return features.gather(2, index) * (1 - weight) + features.gather(2, upper) * weight


class SpecAugment(nn.Module):
    """Vocal tract length perturbation, then frequency and time masking (torchaudio's transforms),
    each drawn per utterance. ``features`` (the mel scale) is needed for the perturbation only."""

    def __init__(self, config: SpecAugmentConfig, features: FeatureConfig | None = None):
        super().__init__()
        if config.freq_warp and features is None:
            raise ValueError("specaugment.freq_warp needs the feature config (the mel bins' frequencies)")
        self.config, self.features = config, features
        self.freq_mask = torchaudio.transforms.FrequencyMasking(config.freq_mask_width, iid_masks=True)
        self.time_mask = torchaudio.transforms.TimeMasking(
            config.time_mask_width, iid_masks=True, p=config.time_mask_max_ratio
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` (batch, frames, n_mels), already normalised, so 0 is the masked value."""
        if not (self.training and self.config.enabled):
            return features
        if self.config.freq_warp:
            factors = 1 + self.config.freq_warp * (2 * torch.rand(features.shape[0]) - 1)
            features = warp_frequencies(features, warped_mel_positions(factors, self.features))
        x = features.transpose(1, 2).unsqueeze(1)  # (batch, 1, n_mels, frames): iid masks need 4-D
        for _ in range(self.config.freq_masks):
            x = self.freq_mask(x)
        for _ in range(self.config.time_masks):
            x = self.time_mask(x)
        return x.squeeze(1).transpose(1, 2)
