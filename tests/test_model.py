import pytest
import torch

from asr.config import ModelConfig
from asr.model import CTCModel, SequenceBatchNorm


@pytest.mark.parametrize("rnn_type", ["lstm", "gru", "rnn"])
def test_output_lengths_match_subsampling(rnn_type):
    model = CTCModel(80, 29, ModelConfig(rnn_type=rnn_type, num_layers=2, hidden_size=16, conv_channels=4)).eval()
    lengths = torch.tensor([101, 57, 4, 1])
    features = torch.randn(4, 101, 80)
    logits, out_lengths = model(features, lengths)
    assert out_lengths.tolist() == [26, 15, 1, 1]  # ceil(ceil(n / 2) / 2)
    assert logits.shape == (4, 26, 29)


def test_time_subsampling_two_doubles_the_frame_rate():
    model = CTCModel(80, 29, ModelConfig(num_layers=1, hidden_size=16, conv_channels=4, time_subsampling=2)).eval()
    logits, out_lengths = model(torch.randn(3, 101, 80), torch.tensor([101, 57, 1]))
    assert out_lengths.tolist() == [51, 29, 1]  # ceil(n / 2)
    assert logits.shape == (3, 51, 29)
    with pytest.raises(ValueError, match="time_subsampling"):
        CTCModel(80, 29, ModelConfig(time_subsampling=3))


def test_padding_does_not_change_outputs():
    model = CTCModel(80, 29, ModelConfig(num_layers=2, hidden_size=16, conv_channels=4)).eval()
    features = torch.randn(1, 40, 80)
    alone, alone_lengths = model(features, torch.tensor([40]))
    padded = torch.cat([features, torch.randn(1, 60, 80)], dim=1)
    batch, lengths = model(torch.cat([padded, torch.randn(1, 100, 80)]), torch.tensor([40, 100]))
    n = alone_lengths.item()
    # packing keeps the backward RNN from reading the padding; only the conv's last frame sees it
    torch.testing.assert_close(batch[0, : n - 1], alone[0, : n - 1], atol=1e-5, rtol=1e-4)


def test_parameter_count_and_bad_type():
    model = CTCModel(80, 29, ModelConfig(num_layers=1, hidden_size=8, conv_channels=2))
    # worked out by hand: conv 1*2*9+2 and 2*2*9+2; projection of 2 channels x 20 mels (80 / 4)
    # onto 8: 2*20*8+8; a BiLSTM of 8: 2 x (4*8*(8+8) + 2*4*8); output 16*29+29
    assert model.parameter_count() == 20 + 38 + 328 + 1152 + 493 == 2031
    model.output.requires_grad_(False)
    assert model.parameter_count() == 2031 - 493  # only what training changes counts
    with pytest.raises(ValueError, match="rnn_type"):
        CTCModel(80, 29, ModelConfig(rnn_type="transformer"))


@pytest.mark.parametrize("rnn_type", ["lstm", "gru", "rnn"])
def test_the_unpacked_rnn_computes_what_the_packed_one_does_outputs_and_gradients(rnn_type):
    torch.manual_seed(0)
    model = CTCModel(20, 12, ModelConfig(rnn_type=rnn_type, num_layers=2, hidden_size=16, conv_channels=4, dropout=0.0))
    model.train()
    x = torch.randn(4, 30, 16)
    lengths = torch.tensor([30, 17, 1, 25])
    results = []
    for packed in (True, False):
        model.zero_grad()
        inputs = x.clone().requires_grad_(True)
        out = model.run_rnn(inputs, lengths, packed=packed)
        (out * torch.linspace(-1, 1, out.shape[-1])).pow(2).sum().backward()
        results.append((out.detach(), inputs.grad, [p.grad.clone() for p in model.rnn.parameters()]))
    (out_p, grad_p, weights_p), (out_u, grad_u, weights_u) = results
    torch.testing.assert_close(out_u, out_p, atol=1e-5, rtol=1e-4)
    assert out_u[1, 17:].abs().max() == 0 and out_u[2, 1:].abs().max() == 0  # padding stays zero
    torch.testing.assert_close(grad_u, grad_p, atol=1e-5, rtol=1e-4)
    for unpacked, packed in zip(weights_u, weights_p):
        torch.testing.assert_close(unpacked, packed, atol=1e-4, rtol=1e-4)


def test_reversing_within_lengths_keeps_padding_in_place_and_undoes_itself():
    from asr.model import reverse_within_lengths

    x = torch.arange(10.0).view(2, 5)
    flipped = reverse_within_lengths(x, torch.tensor([3, 5]))
    assert flipped.tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]
    assert torch.equal(reverse_within_lengths(flipped, torch.tensor([3, 5])), x)


def test_sequence_batch_norm_takes_its_training_statistics_from_valid_frames_only():
    torch.manual_seed(0)
    norm = SequenceBatchNorm(6).train()
    x = torch.randn(3, 10, 6)
    lengths = torch.tensor([10, 4, 7])
    x[1, 4:] = 1e3  # padding far from the data: it would move the statistics if it were counted
    x[2, 7:] = -1e3
    out = norm(x, lengths)
    valid = torch.cat([x[0], x[1, :4], x[2, :7]])
    expected = (valid - valid.mean(0)) / torch.sqrt(valid.var(0, unbiased=False) + norm.norm.eps)
    torch.testing.assert_close(torch.cat([out[0], out[1, :4], out[2, :7]]), expected, atol=1e-5, rtol=1e-4)
    assert out[1, 4:].abs().max() == 0 and out[2, 7:].abs().max() == 0


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_batch_norm_folded_into_the_rnn_gives_the_eval_function_packed_or_not(rnn_type):
    torch.manual_seed(0)
    config = ModelConfig(rnn_type=rnn_type, num_layers=3, hidden_size=16, conv_channels=4, rnn_batch_norm=True)
    model = CTCModel(20, 12, config)
    features, lengths = torch.randn(4, 60, 20), torch.tensor([60, 33, 5, 48])
    for _ in range(5):  # running statistics (and, with momentum, affine terms) away from the identity
        model(features * 3 + 1, lengths)
    for sequence_norm in model.rnn_norms:
        torch.nn.init.uniform_(sequence_norm.norm.weight, 0.5, 2.0)
        torch.nn.init.uniform_(sequence_norm.norm.bias, -0.5, 0.5)
    model.eval()
    expected, _ = model(features, lengths)
    model.fold_batch_norm()
    assert model.rnn_norms is None and not any("norm" in name for name, _ in model.rnn.named_parameters())
    for packed in (False, True):
        model.packed_rnn = packed
        folded, _ = model(features, lengths)
        for row, n in enumerate(model.output_lengths(lengths).tolist()):
            torch.testing.assert_close(folded[row, :n], expected[row, :n], atol=1e-4, rtol=1e-4)
