"""A trained model ready to use: features, acoustic model, vocabulary and decoder together."""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import load_model_file
from .config import Config, config_from_dict
from .decoding import greedy_decode
from .features import LogMel
from .model import CTCModel
from .text import Vocabulary


def pick_device(device: str | None = "auto") -> torch.device:
    """``cuda`` when available for ``auto``/``None``, else the device named."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Recognizer:
    """Feature extractor, acoustic model and vocabulary on one device."""

    def __init__(self, config: Config, vocabulary: Vocabulary, model: CTCModel, device: torch.device):
        self.config = config
        self.vocabulary = vocabulary
        self.device = device
        self.frontend = LogMel(config.features).to(device)
        self.model = model.to(device).eval()

    @property
    def sample_rate(self) -> int:
        return self.config.features.sample_rate

    @torch.no_grad()
    def log_probs(self, waveforms: torch.Tensor, sample_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC log-probabilities (batch, frames, vocab) and valid frame counts for padded waveforms."""
        features, lengths = self.frontend(waveforms.to(self.device), sample_counts.to(self.device))
        logits, out_lengths = self.model(features, lengths)
        return logits.float().log_softmax(-1), out_lengths

    def decode(self, waveforms: torch.Tensor, sample_counts: torch.Tensor) -> list[str]:
        """Greedy transcripts of a padded batch."""
        log_probs, lengths = self.log_probs(waveforms, sample_counts)
        return greedy_decode(log_probs, lengths, self.vocabulary)


def load_model(path: str | Path, device: str | None = None) -> Recognizer:
    """Load a model file (or a training checkpoint) onto ``device`` (``cuda`` when available by default)."""
    data = load_model_file(path)
    config = config_from_dict(data["config"])
    vocabulary = Vocabulary(data["vocabulary"])
    model = CTCModel(config.features.n_mels, len(vocabulary), config.model, config.features.utterance_mean_norm)
    model.load_state_dict(data["state_dict"])
    return Recognizer(config, vocabulary, model, pick_device(device))
