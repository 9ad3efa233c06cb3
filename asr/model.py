"""The acoustic model: conv front-end (time / 4 or / 2), bidirectional RNN stack, linear onto the vocabulary."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .config import ModelConfig
from .features import GlobalNormalization, padding_mask

_RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def _conv_out(lengths: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """Length after a kernel-3, padding-1 convolution of stride 1 or 2."""
    return torch.div(lengths - 1, stride, rounding_mode="floor") + 1


def conv_output_lengths(feature_lengths: torch.Tensor, time_subsampling: int) -> torch.Tensor:
    """Output frames of :class:`ConvSubsampling` for ``feature_lengths`` input frames."""
    return _conv_out(_conv_out(feature_lengths), time_subsampling // 2)


class ConvSubsampling(nn.Module):
    """Two 2-D convolutions over (time, mel): frequency shrinks by 4, time by ``time_subsampling``
    (4: both convolutions have time stride 2; 2: only the first has)."""

    def __init__(self, n_mels: int, channels: int, out_features: int, time_subsampling: int = 4):
        super().__init__()
        if time_subsampling not in (2, 4):
            raise ValueError(f"model.time_subsampling must be 2 or 4, not {time_subsampling!r}")
        self.second_time_stride = time_subsampling // 2
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, stride=(self.second_time_stride, 2), padding=1),
            nn.ReLU(),
        )
        reduced_mels = _conv_out(_conv_out(torch.tensor(n_mels))).item()
        self.project = nn.Linear(channels * reduced_mels, out_features)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return conv_output_lengths(lengths, 2 * self.second_time_stride)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(features.unsqueeze(1))  # (batch, channels, frames / time_subsampling, mels / 4)
        batch, channels, frames, mels = x.shape
        x = self.project(x.permute(0, 2, 1, 3).reshape(batch, frames, channels * mels))
        return x, self.output_lengths(lengths)


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence of ``x`` (batch, time, ...) reversed within its own length; padding stays
    where it is. Applying it twice gives ``x`` back."""
    time = torch.arange(x.shape[1], device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(time < lengths, lengths - 1 - time, time)
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


_RNN_FUNCTIONS = {"lstm": torch.lstm, "gru": torch.gru, "rnn": torch.rnn_tanh}

Direction = Callable[[torch.Tensor], torch.Tensor]  # (batch, time, in) -> (batch, time, out), from a zero state


class SequenceBatchNorm(nn.Module):
    """Deep Speech 2's sequence-wise batch norm of (batch, time, features): in training, the
    statistics of every valid frame of the batch (padding left out, so a sequence's batch-mates'
    lengths do not move them); at inference, the running statistics, frame by frame."""

    def __init__(self, features: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(features)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.norm(x.transpose(1, 2)).transpose(1, 2)
        valid = ~padding_mask(lengths.to(x.device), x.shape[1])
        return torch.zeros_like(x).masked_scatter(valid.unsqueeze(-1), self.norm(x[valid]))


def bidirectional_layers(
    layers: list[tuple[Direction, Direction]],
    x: torch.Tensor,
    lengths: torch.Tensor,
    dropout: float = 0.0,
    norms: nn.ModuleList | None = None,
) -> torch.Tensor:
    """``x`` (batch, time, features) through bidirectional ``layers``, each a (forward, reverse)
    pair of one-direction RNNs run on padded input: the reverse one over each sequence reversed
    within its own length, so no valid frame sees padding; ``dropout`` between layers (training),
    each layer's input through its :class:`SequenceBatchNorm` when ``norms`` are given.
    Frames past a sequence's end are zero, as pad_packed_sequence leaves them."""
    for number, (ahead, behind) in enumerate(layers):
        if norms is not None:
            x = norms[number](x, lengths)
        backwards = reverse_within_lengths(behind(reverse_within_lengths(x, lengths)), lengths)
        x = torch.cat([ahead(x), backwards], dim=-1)
        if number < len(layers) - 1 and dropout:
            x = nn.functional.dropout(x, dropout)
    return x * (~padding_mask(lengths.to(x.device), x.shape[1])).unsqueeze(-1)


def bidirectional_rnn_unpacked(
    rnn: nn.RNNBase, kind: str, x: torch.Tensor, lengths: torch.Tensor, norms: nn.ModuleList | None = None
) -> torch.Tensor:
    """What ``rnn`` (bidirectional, batch_first) gives for the packed ``x``, computed from its own
    weights without packing (:func:`bidirectional_layers`). On the CPU this is several times faster
    to train than packed input (measured 3.8x for 32 x 190 frames, 8x for 10 x 600): the packed
    kernel slices the input once per time step, and each slice's backward writes a zero tensor the
    size of the whole input."""
    function = _RNN_FUNCTIONS[kind]

    def direction(layer: int, suffix: str) -> Direction:
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        weights = [getattr(rnn, f"{name}_l{layer}{suffix}") for name in names]

        def run(source: torch.Tensor) -> torch.Tensor:
            h0 = source.new_zeros(1, source.shape[0], rnn.hidden_size)
            state = (h0, torch.zeros_like(h0)) if kind == "lstm" else h0
            return function(source, state, weights, True, 1, 0.0, rnn.training, False, True)[0]

        return run

    layers = [(direction(layer, ""), direction(layer, "_reverse")) for layer in range(rnn.num_layers)]
    return bidirectional_layers(layers, x, lengths, rnn.dropout if rnn.training else 0.0, norms)


class CTCModel(nn.Module):
    """Log-mel features (batch, frames, n_mels) -> CTC logits (batch, frames / time_subsampling, vocab_size)."""

    def __init__(self, n_mels: int, vocab_size: int, config: ModelConfig, utterance_mean_norm: bool = False):
        super().__init__()
        self.utterance_mean_norm = utterance_mean_norm
        if config.rnn_type not in _RNN_TYPES:
            raise ValueError(f"model.rnn_type must be one of {', '.join(_RNN_TYPES)}, not {config.rnn_type!r}")
        self.normalize = GlobalNormalization(n_mels)
        self.time_subsampling = config.time_subsampling  # input feature frames per output frame
        self.subsample = ConvSubsampling(n_mels, config.conv_channels, config.hidden_size, config.time_subsampling)
        self.rnn_type = config.rnn_type
        self.rnn = _RNN_TYPES[config.rnn_type](
            input_size=config.hidden_size,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        self.rnn_norms: nn.ModuleList | None = None
        if config.rnn_batch_norm:
            sizes = [config.hidden_size] + [2 * config.hidden_size] * (config.num_layers - 1)
            self.rnn_norms = nn.ModuleList(SequenceBatchNorm(size) for size in sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, vocab_size)
        # None: packed input on CUDA, unpacked on the CPU (see run_rnn). The ONNX export sets True:
        # packing becomes the RNN operator's sequence lengths there, and no per-sequence reversal.
        self.packed_rnn: bool | None = None

    def output_lengths(self, feature_lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for ``feature_lengths`` input frames."""
        return self.subsample.output_lengths(feature_lengths)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor, augment: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return logits (batch, out_frames, vocab) and output lengths.

        ``augment`` (SpecAugment) is applied to the normalised features when given.
        """
        # Frames past each utterance's end are zeroed, so that the convolutions see the same
        # zero padding at its end whatever its batch-mates are.
        valid = (~padding_mask(lengths, features.shape[1])).unsqueeze(-1)
        x = self.normalize(features) * valid
        if self.utterance_mean_norm:
            mean = x.sum(1, keepdim=True) / lengths.clamp_min(1)[:, None, None]
            x = (x - mean) * valid
        if augment is not None:
            x = augment(x)
        x, lengths = self.subsample(x, lengths)
        x = self.run_rnn(x, lengths)
        return self.output(self.dropout(x)), lengths

    def run_rnn(self, x: torch.Tensor, lengths: torch.Tensor, packed: bool | None = None) -> torch.Tensor:
        """The RNN stack over ``x`` (batch, frames, features), each sequence seen only up to its
        length: packed (cuDNN's fast path) on a GPU, unpacked on the CPU (the same function,
        several times faster to train there; see :func:`bidirectional_rnn_unpacked`), unless
        ``packed`` or :attr:`packed_rnn` say otherwise; unpacked wherever batch norms sit between
        the layers (:meth:`fold_batch_norm` removes them for inference). A stack
        rebuilt for deployment (``asr.export.UnpackedRNN``, int8) runs itself."""
        if not isinstance(self.rnn, nn.RNNBase):
            return self.rnn(x, lengths)
        if packed is None:
            packed = x.is_cuda if self.packed_rnn is None else self.packed_rnn
        if not packed or self.rnn_norms is not None:
            return bidirectional_rnn_unpacked(self.rnn, self.rnn_type, x, lengths, self.rnn_norms)
        frames = x.shape[1]
        sequences = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)  # lengths on the CPU
        x, _ = self.rnn(sequences)
        x, _ = pad_packed_sequence(x, batch_first=True, total_length=frames)
        return x

    @torch.no_grad()
    def fold_batch_norm(self) -> None:
        """Fold each RNN layer's input batch norm, with its running statistics, into that layer's
        input weights and biases (W (a x + c) + b = (W a) x + (W c + b)): the function the model
        computes in eval mode, as a plain RNN stack that packs, exports and quantizes like any other."""
        if self.rnn_norms is None:
            return
        for layer, sequence_norm in enumerate(self.rnn_norms):
            norm = sequence_norm.norm
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            shift = norm.bias - norm.running_mean * scale
            for suffix in ("", "_reverse"):
                weight = getattr(self.rnn, f"weight_ih_l{layer}{suffix}")
                getattr(self.rnn, f"bias_ih_l{layer}{suffix}").add_(weight @ shift)
                weight.mul_(scale)
        self.rnn_norms = None

    @staticmethod
    def ctc_loss(
        logits: torch.Tensor,
        out_lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
        blank: int = 0,
    ) -> torch.Tensor:
        """Each utterance's CTC loss per target character, (batch,), from :meth:`forward`'s outputs.

        Per character, so that long and short utterances weigh the same; an utterance with more
        characters than output frames (no alignment exists) gives 0 instead of infinity."""
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # CTC wants (frames, batch, vocab)
        losses = nn.functional.ctc_loss(
            log_probs, targets, out_lengths.cpu(), target_lengths, blank=blank, reduction="none", zero_infinity=True
        )
        return losses / target_lengths.to(losses.device).clamp_min(1)

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
