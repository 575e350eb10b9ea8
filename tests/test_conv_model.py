"""The convolutional front end model (conv_many_to_many) and cross-entropy's ignore_index."""

import pytest
import torch
import torch.nn.functional as F

from rnnkit.models import ConvConfig, ConvManyToMany, ConvManyToManyConfig, EncoderConfig, create_model
from rnnkit.training import SupervisedObjective


@pytest.mark.parametrize("stride, steps", [(1, 10), (3, 30), (3, 31), (3, 2)])
def test_outputs_stay_aligned_with_the_input(stride, steps):
    torch.manual_seed(0)
    model = ConvManyToMany(ConvManyToManyConfig(conv=ConvConfig(channels=(8, 8), kernel_size=5, stride=stride),
                                                encoder=EncoderConfig(hidden_size=6, bidirectional=True),
                                                outputs=7))  # fmt: skip
    y, _ = model(torch.randn(2, steps, 4))
    assert y.shape == (2, steps, 7)


def test_strided_head_emits_one_output_per_input_step():
    # an identity-like check: with stride 3, outputs 3j..3j+2 come from recurrent step j only
    torch.manual_seed(0)
    model = create_model("conv_many_to_many", {"conv": {"channels": [4], "kernel_size": 3, "stride": 3},
                                               "encoder": {"hidden_size": 5, "bidirectional": False},
                                               "outputs": 2})  # fmt: skip
    x = torch.randn(1, 12, 4)
    y, _ = model(x)
    x2 = x.clone()
    x2[:, 9:] = torch.randn(1, 3, 4)  # changes only the last recurrent step's input
    y2, _ = model(x2)
    torch.testing.assert_close(y[:, :9], y2[:, :9])  # a forward LSTM: earlier outputs unchanged
    assert not torch.allclose(y[:, 9:], y2[:, 9:])


def test_no_convolution_is_a_plain_recurrent_tagger_and_gradients_reach_every_parameter():
    model = create_model("conv_many_to_many", {"conv": {"channels": []}, "encoder": {"hidden_size": 4}, "outputs": 3})
    assert model.front.output_size == 4 and len(list(model.front.parameters())) == 0
    model = create_model("conv_many_to_many", {"conv": {"stride": 3}, "encoder": {"hidden_size": 4}, "outputs": 3})
    y, _ = model(torch.randn(2, 9, 4))
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("settings, message", [
    ({"kernel_size": 4}, "odd"), ({"kernel_size": 9, "stride": 2}, "kernel_size - stride even"),
    ({"channels": [0]}, "positive"), ({"channels": [], "stride": 3}, "at least one convolution"),
])  # fmt: skip
def test_bad_conv_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        create_model("conv_many_to_many", {"conv": settings, "outputs": 2})


def test_ignore_index_leaves_targets_out_of_loss_accuracy_and_count():
    torch.manual_seed(0)

    def model(x):
        return x, None

    logits = torch.randn(2, 5, 3)
    targets = torch.tensor([[0, 1, -100, 2, -100], [1, 1, 1, -100, 0]])
    out = SupervisedObjective("cross_entropy", ignore_index=-100)(model, (logits, targets))
    keep = targets != -100
    torch.testing.assert_close(out.loss, F.cross_entropy(logits[keep], targets[keep]))
    assert out.count == 7
    assert out.metrics["accuracy"] == pytest.approx((logits[keep].argmax(-1) == targets[keep]).float().mean().item())
    empty = SupervisedObjective("cross_entropy", ignore_index=-100)(model, (logits, torch.full((2, 5), -100)))
    assert empty.count == 0 and empty.loss.item() == 0.0
    with pytest.raises(ValueError, match="ignore_index"):
        SupervisedObjective("mse", ignore_index=-100)
