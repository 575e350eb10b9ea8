"""The voice-by-voice stream model (rnnkit.models.StreamModel)."""

import pytest
import torch

from rnnkit.models import EncoderConfig, StreamModel, StreamModelConfig, create_model


def _model(**kw):
    torch.manual_seed(0)
    config = StreamModelConfig(streams=3, vocab_size=12, outputs=11, embedding_dim=8, positions=4,
                               encoder=EncoderConfig(cell="lstm", hidden_size=16, num_layers=2), **kw)
    return StreamModel(config).eval()


def test_a_stream_sees_only_earlier_streams_of_its_step():
    model = _model(head_hidden=8)
    x, y, p = torch.randint(0, 12, (2, 5, 3)), torch.randint(0, 11, (2, 5, 3)), torch.randint(0, 4, (2, 5))
    logits, _ = model(x, y, positions=p)
    changed = y.clone()
    changed[:, :, 1] = (changed[:, :, 1] + 1) % 11  # the second stream's targets
    other, _ = model(x, changed, positions=p)
    torch.testing.assert_close(other[:, :, :2], logits[:, :, :2])  # streams 0 and 1 do not read stream 1's target
    assert not torch.allclose(other[:, :, 2], logits[:, :, 2])  # stream 2 does
    later = x.clone()
    later[:, 3] = (later[:, 3] + 1) % 12
    shifted, _ = model(later, y, positions=p)
    torch.testing.assert_close(shifted[:, :3], logits[:, :3])  # causal in time


def test_step_equals_forward_and_sample_keeps_fixed():
    model = _model()
    x, y, p = torch.randint(0, 12, (2, 4, 3)), torch.randint(0, 11, (2, 4, 3)), torch.randint(0, 4, (2, 4))
    logits, _ = model(x, y, positions=p)
    state = None
    for t in range(4):
        h, state = model.step(x[:, t], state, p[:, t])
        stepped = torch.stack(model.head_logits(h, y[:, t]), dim=1)  # (B, S, V)
        torch.testing.assert_close(stepped, logits[:, t])
    fixed = torch.tensor([[5, -1, -1], [-1, -1, 2]])
    row = model.sample_row(h, fixed=fixed, generator=torch.Generator().manual_seed(0))
    assert row.shape == (2, 3) and row[0, 0] == 5 and row[1, 2] == 2
    greedy = model.sample_row(h, temperature=0)
    torch.testing.assert_close(greedy[:, 0], torch.stack(model.head_logits(h, greedy), 1)[:, 0].argmax(-1))
    banned = model.sample_row(h, adjust=lambda s, logits, row: logits.masked_fill(torch.arange(11) != 3, float("-inf")))
    assert (banned == 3).all()


def test_every_parameter_learns_and_bad_input():
    model = _model(head_hidden=8).train()
    x, y, p = torch.randint(0, 12, (2, 4, 3)), torch.randint(0, 11, (2, 4, 3)), torch.randint(0, 4, (2, 4))
    logits, _ = model(x, y, positions=p)
    torch.nn.functional.cross_entropy(logits.flatten(0, 2), y.flatten()).backward()
    missing = [n for n, q in model.named_parameters() if q.grad is None or not q.grad.abs().sum() > 0]
    assert not missing
    with pytest.raises(ValueError, match="streams"):
        model(x[..., :2], y[..., :2], positions=p)
    with pytest.raises(ValueError, match=r"targets must hold token ids in \[0, 11\)"):
        model(x, torch.full_like(y, 11), positions=p)
    with pytest.raises(ValueError, match="positions are required"):
        model(x, y)
    with pytest.raises(TypeError, match="integer"):
        model(x.float(), y, positions=p)
    with pytest.raises(ValueError, match="outputs must be at most vocab_size"):
        StreamModelConfig(vocab_size=5, outputs=6)
    assert isinstance(create_model("streams", {"streams": 1, "vocab_size": 5, "outputs": 4}), StreamModel)
