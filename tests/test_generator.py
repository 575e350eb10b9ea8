"""The one-to-many generator: shapes, the parallel path against the step loop, sampling options,
beam search, bad arguments, and a run that learns one sequence per class."""

from __future__ import annotations

import pytest
import torch

from rnnkit.models import EncoderConfig, InputConfig, OneToMany, OneToManyConfig, create_model, model_spec
from rnnkit.apps.seq2seq import Seq2SeqObjective, exact_match
from rnnkit.training import TensorBatches, TrainConfig, Trainer

V = 12


def small(condition=None, mode="state", cell="gru", **settings):
    torch.manual_seed(0)
    config = OneToManyConfig(
        condition=condition or InputConfig(vocab_size=4, embedding_dim=5), vocab_size=V, embedding_dim=6,
        decoder=EncoderConfig(cell=cell, hidden_size=8), condition_mode=mode, max_length=7, **settings,
    )  # fmt: skip
    return OneToMany(config).eval()


CONDITIONS = {
    "class": (InputConfig(vocab_size=4, embedding_dim=5), torch.tensor([0, 3, 1])),
    "vector": (InputConfig(features=3), torch.randn(3, 3)),
}


@pytest.mark.parametrize("mode", ["state", "input", "both"])
@pytest.mark.parametrize("kind", ["class", "vector"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_shapes_and_the_parallel_path_equals_the_step_loop(mode, kind, cell):
    config, condition = CONDITIONS[kind]
    model = small(config, mode, cell).train()
    target = torch.randint(3, V, (3, 5))
    parallel = model(condition, target)
    assert parallel.shape == (3, 5, V)
    carry, _ = model._begin(condition)
    looped, _ = model._decode_loop(target, carry, 1.0)
    torch.testing.assert_close(parallel, looped)
    grads = torch.autograd.grad(parallel.square().sum(), list(model.parameters()))
    looped_grads = torch.autograd.grad(looped.square().sum(), list(model.parameters()))
    for name_param, a, b in zip(model.named_parameters(), grads, looped_grads):
        assert a.abs().sum() > 0, name_param[0]
        torch.testing.assert_close(a, b)


def test_registry_rebuilds_the_model():
    model = small(mode="both")
    spec = model_spec(model)
    assert spec["name"] == "one_to_many"
    rebuilt = create_model(spec["name"], spec["config"])
    rebuilt.load_state_dict(model.state_dict())
    condition, target = torch.tensor([1, 2]), torch.randint(3, V, (2, 4))
    torch.testing.assert_close(rebuilt.eval()(condition, target), model(condition, target))


def test_greedy_and_sampling_options():
    model = small()
    condition = torch.tensor([0, 1, 2, 3] * 8)
    greedy = model.generate(condition)
    assert greedy.tokens.shape[0] == 32 and greedy.tokens.shape[1] <= 7
    assert torch.equal(model.generate(condition).tokens, greedy.tokens), "greedy is deterministic"
    assert torch.equal(model.generate(condition, temperature=1.0, top_k=1).tokens, greedy.tokens)
    assert torch.equal(model.generate(condition, temperature=1.0, top_p=1e-6).tokens, greedy.tokens)

    def sampled(**options):
        return model.generate(condition, generator=torch.Generator().manual_seed(0), **options).tokens

    assert torch.equal(sampled(temperature=1.0), sampled(temperature=1.0)), "a seeded generator repeats"
    assert not torch.equal(sampled(temperature=2.0), greedy.tokens)
    top3 = model.generate(condition, temperature=5.0, top_k=3, generator=torch.Generator().manual_seed(1))
    carry, _ = model._begin(condition)
    first_logits = model._step(torch.full((32,), model.start_token), carry)[0]
    allowed = first_logits.topk(3, dim=-1).indices
    assert (allowed == top3.tokens[:, :1]).any(-1).all(), "the first token is among the top 3"


def test_stopping_at_the_end_token_and_max_length():
    model = small()
    end = model.end_token
    with torch.no_grad():  # make the end token likely: every sequence stops early
        model.head.bias[end] += 2.0
    out = model.generate(torch.tensor([0, 1, 2, 3]), temperature=1.0, generator=torch.Generator().manual_seed(0))
    for tokens, length in zip(out.tokens.tolist(), out.lengths.tolist()):
        if end in tokens:
            assert tokens.index(end) == length - 1
            assert all(t == model.pad_token for t in tokens[length:])
        else:
            assert length == len(tokens) == 7
    assert (model.generate(torch.tensor([0, 1]), max_length=2).lengths <= 2).all()


def test_beam_search():
    model = small(mode="both")
    condition = torch.tensor([0, 1, 2])
    greedy = model.generate(condition)
    one = model.beam_search(condition, beam_size=1)
    assert one.tokens[:, 0].tolist() == greedy.tokens.tolist()
    torch.testing.assert_close(one.log_prob[:, 0], greedy.log_prob)
    beams = model.beam_search(condition, beam_size=4, length_penalty=0.0)
    assert beams.tokens.shape[:2] == (3, 4)
    assert (beams.score[:, :-1] >= beams.score[:, 1:]).all()
    best = model.generate(condition, beam_size=4, length_penalty=0.0)
    assert best.tokens.tolist() == beams.tokens[:, 0].tolist()


def test_bad_arguments_name_the_argument():
    model = small()
    cases = [
        (lambda: small(mode="prefix"), ["condition_mode", "'state'", "'prefix'"]),
        (lambda: small(end_token=0), ["start_token", "end_token", "pad_token", "different"]),
        (lambda: small(start_token=V), ["start_token", f"vocabulary size {V}", f"got {V}"]),
        (lambda: model(torch.tensor([0, 4]), torch.randint(3, V, (2, 3))), ["condition", "[0, 4)", "to 4"]),
        (lambda: model(torch.tensor([[0], [1]]), torch.randint(3, V, (2, 3))), ["condition", "(batch,)", "(2, 1)"]),
        (lambda: small(InputConfig(features=3))(torch.randn(2, 5), torch.randint(3, V, (2, 3))), ["condition", "(batch, 3)", "(2, 5)"]),
        (lambda: model(torch.tensor([0, 1]), torch.randint(3, V, (3, 3))), ["target", "one row per condition", "expected 2", "got 3"]),
        (lambda: model(torch.tensor([0, 1]), torch.randint(3, V, (2, 3)), teacher_forcing=-0.1), ["teacher_forcing", "[0, 1]"]),
        (lambda: model.generate(torch.tensor([0]), temperature=-1.0), ["temperature", ">= 0", "-1.0"]),
        (lambda: model.generate(torch.tensor([0]), top_k=0), ["top_k", "positive", "0"]),
        (lambda: model.generate(torch.tensor([0]), beam_size=3, top_k=2), ["beam_size > 1", "top_k"]),
    ]
    for call, words in cases:
        with pytest.raises(ValueError) as error:
            call()
        for word in words:
            assert word in str(error.value), (words, str(error.value))
    with pytest.raises(ValueError, match=r"decoder.bidirectional must be False"):
        OneToMany(OneToManyConfig(decoder=EncoderConfig(bidirectional=True)))


def test_learns_a_sequence_per_class():
    """Six classes, each with its own sequence of 3-6 symbols: greedy generation writes every one exactly."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    sequences = torch.zeros(6, 7, dtype=torch.long)
    for c in range(6):
        n = int(torch.randint(3, 7, (1,), generator=g))
        sequences[c, :n] = torch.randint(3, V, (n,), generator=g)
        sequences[c, n] = 2  # end
    classes = torch.arange(6).repeat(100)
    config = OneToManyConfig(condition=InputConfig(vocab_size=6, embedding_dim=16), vocab_size=V, embedding_dim=16,
                             decoder=EncoderConfig(cell="lstm", hidden_size=32), max_length=10)  # fmt: skip
    model = OneToMany(config)
    settings = TrainConfig(max_steps=150, max_epochs=100, lr=1e-2, clip_norm=1.0, device="cpu")
    Trainer(model, Seq2SeqObjective(), settings, quiet=True).fit(TensorBatches(classes, sequences[classes], batch_size=32))
    out = model.generate(torch.arange(6))
    assert exact_match(out.tokens, sequences).all(), (out.tokens, sequences)
