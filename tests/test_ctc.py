"""CTC: the loss against torch and against every path summed by hand, greedy and prefix beam
decoding, priors, forced alignment, the model's lengths and streaming step, and a synthetic task
whose alignment is known, learned and read back."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from rnnkit.models import CTC, CTCConfig, EncoderConfig, FrontEndConfig, InputConfig, create_model, model_spec
from rnnkit.models.ctc import (
    GreedyStream,
    NGramPrior,
    WordListPrior,
    collapse,
    ctc_loss,
    forced_align,
    greedy_decode,
    prefix_beam_search,
    prior_from_dict,
)
from rnnkit.training import CTCBatches, CTCObjective, TensorBatches  # noqa: F401


def labelling_probabilities(probs: torch.Tensor, blank: int = 0) -> dict[tuple[int, ...], float]:
    """Every labelling's probability by brute force: the sum over all T-frame paths collapsing to it."""
    T, C = probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(C), repeat=T):
        p = math.prod(float(probs[t, c]) for t, c in enumerate(path))
        key = tuple(collapse(path, blank))
        totals[key] = totals.get(key, 0.0) + p
    return totals


# -----------------------------------------------------------------------------
# the loss


def test_loss_of_a_hand_made_case():
    # two frames, target [1]: the paths "1 1", "1 -", "- 1"
    probs = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], dtype=torch.float64)
    expected = -math.log(0.5 * 0.1 + 0.5 * 0.6 + 0.2 * 0.1)  # -log 0.37
    loss = ctc_loss(probs.log()[None], torch.tensor([[1]]), torch.tensor([2]), torch.tensor([1]), reduction="sum")
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    # a repeated symbol needs a blank between: [1, 1] in two frames is impossible, in three only "1 - 1"
    assert ctc_loss(probs.log()[None], torch.tensor([[1, 1]]), None, torch.tensor([2]), reduction="sum").item() == math.inf
    probs3 = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.1, 0.7, 0.2]], dtype=torch.float64)
    loss = ctc_loss(probs3.log()[None], torch.tensor([[1, 1]]), None, torch.tensor([2]), reduction="sum")
    assert loss.item() == pytest.approx(-math.log(0.5 * 0.6 * 0.7), rel=1e-9)


def test_loss_equals_the_sum_over_every_path_and_torchs_own():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 3, generator=generator, dtype=torch.float64)
    targets = torch.tensor([[1, 2], [2, 0], [1, 1]])
    target_lengths, lengths = torch.tensor([2, 1, 2]), torch.tensor([4, 3, 4])
    per_row = ctc_loss(logits, targets, lengths, target_lengths, reduction="none")
    for b in range(3):
        probs = logits[b, : lengths[b]].softmax(-1)
        brute = labelling_probabilities(probs)[tuple(targets[b, : target_lengths[b]].tolist())]
        assert per_row[b].item() == pytest.approx(-math.log(brute), rel=1e-9)
    torch_loss = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets, lengths, target_lengths, reduction="mean")
    assert ctc_loss(logits, targets, lengths, target_lengths).item() == pytest.approx(torch_loss.item(), rel=1e-12)
    # mean: each row's loss over its target length, then the batch mean
    assert torch_loss.item() == pytest.approx((per_row / target_lengths).mean().item(), rel=1e-12)


def test_loss_gradcheck_tiny():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    targets, lengths, target_lengths = torch.tensor([[1, 3], [2, 2]]), torch.tensor([5, 4]), torch.tensor([2, 2])
    assert torch.autograd.gradcheck(lambda z: ctc_loss(z, targets, lengths, target_lengths), (logits,))


def test_model_gradcheck_tiny_through_frontend_and_encoder():
    torch.manual_seed(0)
    model = CTC(CTCConfig(input=InputConfig(features=2), frontend=FrontEndConfig(layers=1, channels=3, stride=2),
                          encoder=EncoderConfig(cell="gru", hidden_size=3), outputs=3)).double()  # fmt: skip
    x = torch.randn(2, 6, 2, dtype=torch.float64, requires_grad=True)
    targets, lengths, target_lengths = torch.tensor([[1, 2], [2, 0]]), torch.tensor([6, 4]), torch.tensor([2, 1])
    assert torch.autograd.gradcheck(lambda z: model.loss(z, lengths, targets, target_lengths), (x,))


def test_model_loss_ignores_padding_and_equals_torchs_on_its_logits():
    torch.manual_seed(0)
    model = CTC(CTCConfig(input=InputConfig(features=4), frontend=FrontEndConfig(layers=2, channels=6, stride=2),
                          encoder=EncoderConfig(cell="lstm", hidden_size=8, num_layers=2, bidirectional=True),
                          outputs=5)).eval()  # fmt: skip
    x = torch.randn(3, 11, 4)
    lengths, targets, target_lengths = torch.tensor([11, 7, 3]), torch.tensor([[1, 2, 3], [4, 4, 0], [2, 0, 0]]), torch.tensor([3, 2, 1])
    padded = x.clone()
    padded[1, 7:], padded[2, 3:] = 1e3, -1e3  # garbage past each length
    per_row = model.loss(padded, lengths, targets, target_lengths, reduction="none")
    for b in range(3):
        alone = model.loss(x[b : b + 1, : lengths[b]], None, targets[b : b + 1], target_lengths[b : b + 1], reduction="none")
        torch.testing.assert_close(per_row[b], alone[0], rtol=1e-5, atol=1e-5)
    logits, _ = model(x, lengths=lengths)
    assert logits.shape == (3, 6, 5) and model.output_lengths(lengths).tolist() == [6, 4, 2]
    reference = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets, torch.tensor([6, 4, 2]), target_lengths)
    torch.testing.assert_close(model.loss(x, lengths, targets, target_lengths), reference)


# -----------------------------------------------------------------------------
# decoding


def test_greedy_decoding_collapses_repeats_then_drops_blanks():
    path = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 0], [0, 3, 3, 3, 0, 0, 0, 0]])
    logits = F.one_hot(path, 4).float() * 5
    assert greedy_decode(logits) == [[1, 1, 2], [3]]
    assert greedy_decode(logits, torch.tensor([3, 2])) == [[1], [3]]


def confident(path: torch.Tensor, C: int, generator: torch.Generator) -> torch.Tensor:
    """Logits whose best class is ``path`` at every frame, by a wide margin."""
    return torch.randn(*path.shape, C, generator=generator) + 8 * F.one_hot(path, C)


@pytest.mark.parametrize("seed", range(5))
def test_beam_width_1_equals_greedy(seed):
    generator = torch.Generator().manual_seed(seed)
    paths = torch.randint(0, 5, (6, 30), generator=generator)
    logits, lengths = confident(paths, 5, generator), torch.randint(1, 31, (6,), generator=generator)
    beams = prefix_beam_search(logits, lengths, beam_width=1)
    assert [list(row[0].tokens) for row in beams] == greedy_decode(logits, lengths)


def test_beam_width_1_keeps_the_likelier_labelling_where_greedy_takes_the_likelier_path():
    # after "a": blank 0.3, a 0.3, b 0.4; greedy takes b (0.4), staying on "a" is 0.3 + 0.3
    probs = torch.tensor([[[0.0, 1.0, 0.0], [0.3, 0.3, 0.4]]]).clamp_min(1e-12)
    assert greedy_decode(probs.log()) == [[1, 2]]
    best = prefix_beam_search(probs.log(), beam_width=1)[0][0]
    assert best.tokens == (1,) and math.exp(best.log_prob) == pytest.approx(0.6, rel=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_a_wide_beam_finds_the_most_probable_labelling(seed):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, 5, 3, generator=generator) * 1.5
    exact = labelling_probabilities(logits[0].softmax(-1))
    best = max(exact, key=exact.get)
    hypotheses = prefix_beam_search(logits, beam_width=64)[0]
    assert hypotheses[0].tokens == best
    for h in hypotheses:  # every kept labelling with its exact probability
        assert math.exp(h.log_prob) == pytest.approx(exact[h.tokens], rel=1e-5)


def test_a_word_list_prior_keeps_decoding_inside_the_list():
    # the acoustics prefer "1 2"; the list has only "1" and "2 1": the likelier of those two wins
    probs = torch.tensor([[[0.0, 0.5, 0.4, 0.1], [0.1, 0.2, 0.6, 0.1], [0.8, 0.1, 0.1, 0.0]]]).clamp_min(1e-9)
    assert prefix_beam_search(probs.log(), beam_width=8)[0][0].tokens == (1, 2)
    prior = WordListPrior([[1], [2, 1]])
    found = prefix_beam_search(probs.log(), beam_width=8, prior=prior)[0]
    assert found[0].tokens in {(1,), (2, 1)} and all(h.score == -math.inf or h.tokens in {(1,), (2, 1)} for h in found)
    exact = labelling_probabilities(probs[0])
    assert found[0].tokens == max([(1,), (2, 1)], key=exact.get)
    # words joined by a separator (3): "1 3 1" is two listed words, "1 2" is not a word
    words = WordListPrior([[1], [2, 1]], separator=3)
    assert words.final((1, 3, 2, 1)) == 0.0 and words.final((1, 2)) == -math.inf
    assert words.score((1,), 3) == 0.0 and words.score((), 3) == -math.inf and words.score((1, 3), 2) == 0.0


def test_an_ngram_prior_is_a_distribution_and_sways_an_ambiguous_frame():
    prior = NGramPrior.fit([[1, 2, 1, 2], [1, 2]], symbols=[1, 2, 3], order=3, smoothing=0.3)
    for prefix in [(), (1,), (1, 2), (3, 3)]:
        total = sum(math.exp(prior.score(prefix, s)) for s in (1, 2, 3)) + math.exp(prior.final(prefix))
        assert total == pytest.approx(1.0, rel=1e-12)
    assert prior.score((1,), 2) > prior.score((1,), 3)
    # a frame undecided between 2 and 3 after a clear 1: the prior, having seen "1 2", picks 2
    probs = torch.tensor([[[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.49, 0.51]]]).clamp_min(1e-9)
    assert prefix_beam_search(probs.log(), beam_width=4)[0][0].tokens == (1, 3)
    assert prefix_beam_search(probs.log(), beam_width=4, prior=prior, prior_weight=0.5)[0][0].tokens == (1, 2)
    again = prior_from_dict(prior.to_dict())
    assert again.score((1, 2), 1) == prior.score((1, 2), 1) and again.final((2,)) == prior.final((2,))


def test_greedy_stream_gives_greedy_decoding_frame_by_frame():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 25, 4, generator=generator)
    stream = GreedyStream(batch_size=2)
    for t in range(25):
        stream.push(logits[:, t])
    assert stream.tokens == greedy_decode(logits)


# -----------------------------------------------------------------------------
# alignment


def test_forced_alignment_of_a_hand_made_case_and_against_brute_force():
    probs = torch.tensor([[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4]])
    # target [1, 1]: the blank between the two 1s must be frame 1
    assert forced_align(probs.log(), [1, 1]).tolist() == [1, 0, 1, 0]
    # target [2]: "2 - - -" (0.1 * 0.6 * 0.1 * 0.5 = 0.003) beats "- - - 2" (0.0024) and "2 2 2 2"
    assert forced_align(probs.log(), [2]).tolist() == [2, 0, 0, 0]
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        lp = torch.randn(5, 3, generator=generator).log_softmax(-1)
        target = [1, 2]
        best = max((p for p in itertools.product(range(3), repeat=5) if collapse(p) == target),
                   key=lambda p: sum(lp[t, c].item() for t, c in enumerate(p)))  # fmt: skip
        found = forced_align(lp, target)
        assert collapse(found.tolist()) == target
        assert sum(lp[t, c].item() for t, c in enumerate(found.tolist())) == pytest.approx(
            sum(lp[t, c].item() for t, c in enumerate(best)), abs=1e-9)


def synthetic_alignment_task(n: int, generator: torch.Generator):
    """Sequences of 1-3 symbols (1..3), each held for 3-5 frames with 1-3 frames of silence around:
    a frame of symbol s is a noisy one-hot of s among 4 features (feature 0 is silence)."""
    frames, lengths, targets, target_lengths, segments = [], [], [], [], []
    for _ in range(n):
        count = int(torch.randint(1, 4, (1,), generator=generator))
        symbols = torch.randint(1, 4, (count,), generator=generator).tolist()
        labels, spans = [0] * int(torch.randint(1, 4, (1,), generator=generator)), []
        for s in symbols:
            start = len(labels)
            labels += [s] * int(torch.randint(3, 6, (1,), generator=generator))
            spans.append((start, len(labels)))
            labels += [0] * int(torch.randint(1, 4, (1,), generator=generator))
        frames.append(F.one_hot(torch.tensor(labels), 4).float() + 0.3 * torch.randn(len(labels), 4, generator=generator))
        lengths.append(len(labels))
        targets.append(symbols + [0] * (3 - count))
        target_lengths.append(count)
        segments.append(spans)
    x = torch.zeros(n, max(lengths), 4)
    for i, f in enumerate(frames):
        x[i, : len(f)] = f
    return x, torch.tensor(lengths), torch.tensor(targets), torch.tensor(target_lengths), segments


def test_a_synthetic_task_with_a_known_alignment_is_learned_and_its_alignment_recovered():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    x, lengths, targets, target_lengths, _ = synthetic_alignment_task(256, generator)
    model = CTC(CTCConfig(input=InputConfig(features=4), encoder=EncoderConfig(cell="gru", hidden_size=24), outputs=4))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    batches, objective = CTCBatches(x, lengths, targets, target_lengths, batch_size=32, seed=0), CTCObjective()
    for epoch in range(12):
        for batch in batches.epoch(epoch):
            optimizer.zero_grad()
            objective(model, batch).loss.backward()
            optimizer.step()
    model.eval()
    tx, tl, ty, ttl, segments = synthetic_alignment_task(64, torch.Generator().manual_seed(1))
    decoded = model.decode(tx, tl)
    truth = [ty[i, : ttl[i]].tolist() for i in range(64)]
    assert sum(d == t for d, t in zip(decoded, truth)) >= 60  # untrained: about 1 of 64
    logits, _ = model(tx, lengths=tl)
    inside = total = 0
    for i in range(64):
        path = forced_align(logits[i, : tl[i]], truth[i]).tolist()
        for k, (start, end) in enumerate(segments[i]):  # the k-th symbol's first emitting frame
            emitted = [t for t in range(len(path)) if path[t] != 0 and (t == 0 or path[t - 1] != path[t])]
            total += 1
            inside += start <= emitted[k] < end  # inside the frames that held the symbol
    assert inside / total >= 0.95  # untrained: about 0.15


# -----------------------------------------------------------------------------
# the model: lengths, streaming, the registry, bad input


@pytest.mark.parametrize("frontend", [FrontEndConfig(), FrontEndConfig(layers=2, channels=5, kernel_size=3, stride=3)])
def test_stepping_frame_by_frame_equals_forward(frontend):
    torch.manual_seed(0)
    model = CTC(CTCConfig(input=InputConfig(features=3), frontend=frontend,
                          encoder=EncoderConfig(cell="lstm", hidden_size=6, num_layers=2), outputs=4)).eval()  # fmt: skip
    x = torch.randn(2, 10, 3)
    offline, _ = model(x)
    state, online = None, []
    for t in range(10):
        logits, state = model.step(x[:, t], state)
        if logits is not None:
            online.append(logits)
    torch.testing.assert_close(torch.stack(online, 1), offline, rtol=1e-5, atol=1e-6)


def test_registry_rebuilds_the_model_and_bad_settings_name_the_setting():
    model = create_model("ctc", {"input": {"features": 5}, "frontend": {"layers": 1, "stride": 2}, "outputs": 7})
    again = create_model(**model_spec(model))
    again.load_state_dict(model.state_dict())
    x = torch.randn(1, 9, 5)
    torch.testing.assert_close(again(x)[0], model(x)[0])
    with pytest.raises(ValueError, match="model.frontend.stride=2 needs a convolution"):
        create_model("ctc", {"frontend": {"stride": 2}})
    with pytest.raises(ValueError, match="model.outputs must be an integer >= 2"):
        create_model("ctc", {"outputs": 1})
    with pytest.raises(ValueError, match="model.blank must be a class id in"):
        create_model("ctc", {"outputs": 3, "blank": 3})


def test_bad_input_is_named():
    model = CTC(CTCConfig(input=InputConfig(features=2), encoder=EncoderConfig(hidden_size=4, bidirectional=True)))
    with pytest.raises(ValueError, match="step needs a unidirectional model"):
        model.step(torch.randn(1, 2))
    with pytest.raises(ValueError, match="logits must be 3-D"):
        greedy_decode(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"lengths must be in \[0, 4\]"):
        greedy_decode(torch.randn(1, 4, 3), torch.tensor([5]))
    with pytest.raises(ValueError, match="blank must be a class id below"):
        prefix_beam_search(torch.randn(1, 4, 3), blank=3)
    with pytest.raises(ValueError, match="beam_width must be"):
        prefix_beam_search(torch.randn(1, 4, 3), beam_width=0)
    with pytest.raises(TypeError, match="prior must have score"):
        prefix_beam_search(torch.randn(1, 4, 3), prior=object())
    with pytest.raises(ValueError, match="need at least 3 frames"):
        forced_align(torch.randn(2, 3), [1, 1])
    with pytest.raises(ValueError, match="labellings\\[0\\] holds symbol ids \\[5\\]"):
        NGramPrior.fit([[5]], symbols=[1, 2])


def test_batches_are_cut_to_each_batchs_longest_and_resume_the_same():
    x, lengths = torch.randn(5, 9, 2), torch.tensor([9, 3, 4, 2, 5])
    targets, target_lengths = torch.tensor([[1, 2, 3]] * 5), torch.tensor([3, 1, 2, 1, 1])
    noise = lambda x, lengths, g: x + torch.randn(x.shape, generator=g)  # noqa: E731
    batches = CTCBatches(x, lengths, targets, target_lengths, batch_size=2, seed=4, augment=noise)
    first = list(batches.epoch(1))
    for bx, bl, by, btl in first:
        assert bx.shape[1] == int(bl.max()) and by.shape[1] == int(btl.max())
    resumed = list(batches.epoch(1, start=1))
    for a, b in zip(first[1:], resumed):
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v)
