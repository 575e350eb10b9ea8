"""State hooks: see and replace every step's state; the basis of the gradient-flow diagnostics."""

import torch

import rnnkit


def zero_probe(store):
    def hook(layer, slot, t, state):
        probe = torch.zeros_like(state[0], requires_grad=True)
        store[(slot, t)] = probe
        return (state[0] + probe, *state[1:])

    return hook


def test_probe_gradients_equal_dloss_dh_of_the_cell_stepped_by_hand():
    torch.manual_seed(0)
    layer = rnnkit.GRU(3, 4, layer_norm=True).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    weights = torch.randn(5, 2, 4, dtype=torch.float64)
    probes = {}
    handle = layer.register_state_hook(zero_probe(probes))
    output, _ = layer(x)
    (output * weights).sum().backward()

    cell = rnnkit.GRUCell(3, 4, layer_norm=True).double()
    cell.load_state_dict({n: getattr(layer, n + "_l0") for n, _ in cell.named_parameters()})
    h, hs = None, []
    for x_t in x:
        h = cell(x_t, h)
        h.retain_grad()
        hs.append(h)
    (torch.stack(hs) * weights).sum().backward()
    for t, h_t in enumerate(hs):
        torch.testing.assert_close(probes[(0, t)].grad, h_t.grad, atol=1e-12, rtol=1e-10)
    # the gradient reaching early steps is smaller: it decays through the recurrence
    handle.remove()
    assert not layer._state_hooks


def test_hooks_see_every_slot_and_step_and_leave_results_unchanged():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    expected = layer(x, lengths=[4, 2])
    seen = []
    layer.register_state_hook(lambda layer, slot, t, state: seen.append((slot, t, len(state))))
    got = layer(x, lengths=[4, 2])
    assert sorted(seen) == [(slot, t, 2) for slot in range(4) for t in range(4)]
    torch.testing.assert_close(got[0], expected[0])
    for a, b in zip(got[1], expected[1]):
        torch.testing.assert_close(a, b)
