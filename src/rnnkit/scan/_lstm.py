"""The LSTM's time loops: its hand-written BPTT (peepholes, projections and every option) and the
compiled loop of the layer-norm LSTM, and its routes."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _native
from ..cells import LSTMCell
from . import _bptt
from ._autocast import autocast_dtype, autocast_enabled, outside_autocast
from ._bptt import (  # the pieces every family's BPTT shares
    chunk_buffer, component, each_previous, gain_grad, keep_for_backward, mix, mixes, new_weight, norm,
    norm_backward, one_minus_square, plus_incoming, sigmoid_slope, split_grad, step_of, times_one_minus,
    weight_grad, with_bias
)
from ._compiled import LOW, applies, pack, valid_weights
from ._routes import Route, ScanCall, ScanResult
from ._twin import Twin, twin_backward
from ._torch_vf import TORCH


class LSTMScan(torch.autograd.Function):
    """torch.nn's LSTM (gate order i, f, g, o), with optional peepholes (Gers et al. 2002) and
    projection ``h_t = W_hr (o_t * tanh(c_t))`` (Sak et al. 2014)."""

    @staticmethod
    def forward(fctx, xp, h0, c0, weight, bias, peep, gain, gain_c, bias_c, proj, valid, h_mask, keep, products, twin):
        fctx.twin = twin  # the step loop that differentiates this call again (scan._twin)
        steps, batch, G = xp.shape
        H = G // 4
        weight_t = products.operand(weight).t()  # (R, 4H)
        proj_t = products.operand(proj).t() if proj is not None else None  # (H, P)
        gates = torch.empty_like(xp)  # (T, B, 4H): x'_t + b_hh, then the activations i, f, g, o
        hs = h0.new_empty((steps, batch, h0.shape[-1]))  # the states in the parameters' dtype, even under autocast
        cs = h0.new_empty((steps, batch, H))
        keep_h, keep_c = component(keep, 0), component(keep, 1)
        mix_h, mix_c = mixes(keep_h, valid), mixes(keep_c, valid)
        us = torch.empty_like(xp, dtype=h0.dtype) if gain is not None else None
        if peep is not None:
            p_if, p_o = peep[: 2 * H].view(2, H), peep[2 * H :]
        normed, normed_c = ([], []), ([], [])
        h, c = h0, c0
        for t in range(steps):
            a = with_bias(xp[t], bias, gates[t])  # (B, 4H)
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                products.addmm_(a, hin, weight_t)
            else:  # each gate's recurrent pre-activation normalised over its H units
                u = products.mm(hin, weight_t, out=us[t]).view(batch, 4, H)
                xhat, mean, rstd = norm(u)  # (B, 4, H), (B, 4, 1), (B, 4, 1)
                normed[0].append(mean)
                normed[1].append(rstd)
                a.addcmul_(xhat.view(batch, G), gain)
            if peep is not None:  # the input and forget gates peek at the previous cell state
                a.view(batch, 4, H)[:, :2].addcmul_(c.unsqueeze(1), p_if)
            a[:, : 2 * H].sigmoid_()
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H].tanh_(), a[:, 3 * H :]
            c_new = (f * c if mix_c else torch.mul(f, c, out=cs[t])).addcmul_(i, g)
            if peep is not None:  # the output gate peeks at the new one
                o.addcmul_(c_new, p_o)
            o.sigmoid_()
            if gain_c is None:
                tc = torch.tanh(c_new)
            else:
                c_out, mean_c, rstd_c = norm(c_new, gain_c, bias_c)  # (B, H), (B, 1), (B, 1)
                normed_c[0].append(mean_c)
                normed_c[1].append(rstd_c)
                tc = c_out.tanh_()
            direct = None if mix_h else hs[t]  # without zoneout and lengths the new h is the state
            if proj is None:
                h_new = torch.mul(tc, o, out=direct) if direct is not None else tc.mul_(o)  # (B, H)
            else:
                m = tc.mul_(o)
                h_new = products.mm(m, proj_t, out=direct)  # (B, P)
            v = None if valid is None else valid[t]
            h = mix(h, h_new, step_of(keep_h, t), v, hs[t]) if mix_h else h_new
            c = mix(c, c_new, step_of(keep_c, t), v, cs[t]) if mix_c else c_new
        norms = tuple(torch.stack(parts) for parts in normed) if gain is not None else (None,) * 2
        norms_c = tuple(torch.stack(parts) for parts in normed_c) if gain_c is not None else (None,) * 2
        keep_for_backward(fctx, h0, c0, weight, peep, gain, gain_c, bias_c, proj, gates, hs, cs, us,
                           *norms, *norms_c, valid, h_mask, keep=keep, bias=bias, products=products)  # fmt: skip
        return hs, cs

    @staticmethod
    @twin_backward("hand-written BPTT of the LSTM")
    @outside_autocast
    def backward(fctx, dhs, dcs):
        (h0, c0, weight, peep, gain, gain_c, bias_c, proj, gates, hs, cs, u, mean, rstd, mean_c, rstd_c,
         valid, h_mask) = fctx.saved_tensors  # fmt: skip
        products = fctx.products
        weight_low, proj_low = products.operand(weight), products.operand(proj)
        steps, batch, G = gates.shape
        H = G // 4
        need = fctx.needs_input_grad
        chunk = _bptt.CHUNK  # steps per chunk, read when backward runs
        i, f, g, o = (gates[..., k * H : (k + 1) * H] for k in range(4))
        dgates = torch.empty_like(gates)  # (T, B, 4H): local derivatives, then d(gates) = d(x'_t)
        di, df, dg, do = (dgates[..., k * H : (k + 1) * H] for k in range(4))
        keep = fctx.keep
        weight_h = new_weight(component(keep, 0), valid, gates.dtype)
        weight_c = new_weight(component(keep, 1), valid, gates.dtype)
        if peep is not None:
            p_i, p_f, p_o = peep.chunk(3)
        dus = chunk_buffer(dgates) if gain is not None else None  # d(W_hh h) under layer norm
        d_couts = chunk_buffer(cs) if gain_c is not None else None  # d(c_out), for the cell norm's gains
        dh_news = chunk_buffer(hs) if proj is not None else None  # d(W_hr m), for W_hr's gradient
        sums = dict.fromkeys(("weight", "bias", "peep", "gain", "gain_c", "bias_c", "proj"))
        gh, gc = torch.zeros_like(h0), torch.zeros_like(c0)
        # the sweep runs a chunk of steps at a time, latest first: each chunk's local derivatives
        # at once (a few ops over CHUNK steps, while they are in cache), then its steps, then its sums
        for start in reversed(range(0, steps, chunk)):
            part = slice(start, min(start + chunk, steps))
            n = part.stop - start

            def times_c_prev(x: Tensor, out: Tensor) -> Tensor:  # c_{t-1} * x_t over the chunk
                return each_previous(c0, cs, out, lambda c, t, o: torch.mul(c, x[t], out=o), part)

            # c before zoneout, as forward computed it; under lengths alone the held cs serves (its
            # gradient is zero past the end); without either it is cs
            c_new = cs[part]
            if component(keep, 1) is not None:
                c_new = times_c_prev(f, torch.empty_like(c_new)).addcmul_(i[part], g[part])
            tc = _cell_tanh(c_new, gain_c, bias_c)  # (n, B, H)
            torch.mul(sigmoid_slope(o[part], do[part]), tc, out=do[part])  # tanh(c) o (1 - o)
            to_c = one_minus_square(tc, tc).mul_(o[part])  # o (1 - tanh^2): d(o tanh(c)) -> d(c), or d(c_out)
            sigmoid_slope(i[part], di[part]).mul_(g[part])  # g i (1 - i)
            times_one_minus(times_c_prev(f, df[part]), f[part])  # c_{t-1} f (1 - f)
            one_minus_square(g[part], dg[part]).mul_(i[part])  # i (1 - g^2)
            for t in range(part.stop - 1, start - 1, -1):
                j = t - start
                dh_new, held_h = split_grad(plus_incoming(gh, dhs, t), weight_h, t)
                dc_new, held_c = split_grad(plus_incoming(gc, dcs, t), weight_c, t)
                if proj is not None:
                    dh_new = products.mm(dh_news[j].copy_(dh_new), proj_low)  # (B, P) @ (P, H): d(o tanh(c))
                d = dgates[t].view(batch, 4, H)
                d[:, 3].mul_(dh_new)  # d(pre o)
                if gain_c is None:
                    dc = torch.addcmul(dc_new, dh_new, to_c[j])
                else:
                    d_cout = torch.mul(dh_new, to_c[j], out=d_couts[j])
                    dc = norm_backward(d_cout, c_new[j], mean_c[t], rstd_c[t], gain_c).add_(dc_new)
                if peep is not None:
                    dc.addcmul_(d[:, 3], p_o)
                d[:, :3].mul_(dc.unsqueeze(1))  # d(pre i, f, g)
                src = dgates[t]
                if gain is not None:
                    du = norm_backward(d * gain.view(4, H), u[t].view(batch, 4, H), mean[t], rstd[t])
                    src = dus[j].copy_(du.view(batch, G))
                gh = products.mm(src, weight_low)  # (B, 4H) @ (4H, R)
                if h_mask is not None:
                    gh.mul_(h_mask)
                if held_h is not None:
                    gh.add_(held_h)
                gc = dc.mul_(f[t])
                if peep is not None:
                    gc.addcmul_(d[:, 0], p_i).addcmul_(d[:, 1], p_f)
                if held_c is not None:
                    gc.add_(held_c)
            del to_c, tc
            if need[3] and gain is not None:  # d(W_hh h) of this chunk only
                sums["weight"] = weight_grad(dus[:n], h0, hs, h_mask, start=start, out=sums["weight"],
                                              products=products)  # fmt: skip
            terms = {}
            if need[4] and fctx.has_bias:
                terms["bias"] = dgates[part].sum((0, 1)).to(h0.dtype)
            if peep is not None and need[5]:
                scratch = torch.empty_like(c_new)
                terms["peep"] = torch.cat((
                    times_c_prev(di, scratch).sum((0, 1)), times_c_prev(df, scratch).sum((0, 1)),
                    torch.mul(do[part], c_new, out=scratch).sum((0, 1)),
                ))  # fmt: skip
            if gain is not None and need[6]:
                terms["gain"] = gain_grad(dgates[part], u[part].view(n, batch, 4, H), mean[part], rstd[part])
            if gain_c is not None:
                terms["gain_c"] = gain_grad(d_couts[:n], c_new.unsqueeze(2), mean_c[part].unsqueeze(2),
                                             rstd_c[part].unsqueeze(2))
                terms["bias_c"] = d_couts[:n].sum((0, 1))
            if proj is not None and need[9]:
                m = _cell_tanh(c_new, gain_c, bias_c).mul_(o[part])  # (n, B, H): the projection's input
                terms["proj"] = products.mm(dh_news[:n].flatten(0, 1).t(), m.flatten(0, 1))  # (P, n*B) @ (n*B, H)
            for name, term in terms.items():
                sums[name] = term if sums[name] is None else sums[name].add_(term)
        if need[3] and gain is None:  # one matmul over all steps, once the chunks' scratch is gone
            sums["weight"] = weight_grad(dgates, h0, hs, h_mask, products=products)
        return (dgates, gh, gc, *sums.values(), None, None, None, None, None)


def _cell_tanh(c: Tensor, gain_c: Tensor | None, bias_c: Tensor | None) -> Tensor:
    """``tanh(c)``, or ``tanh(layer_norm(c))`` under layer norm, for all steps: (T, B, H)."""
    return torch.tanh(c) if gain_c is None else norm(c, gain_c, bias_c)[0].tanh_()


def _sweep(xp, h0, c0, weight, bias, gain, gain_c, bias_c, valid, *, save: bool, low=None) -> tuple[Tensor, ...]:
    """The layer-norm LSTM's compiled forward sweep: ``hs``, ``cs`` (T, B, H) and, where ``save``,
    what backward reads: the gates' activations and normed products (T, B, 4H) each, and per row
    the norms' statistics (T, B, 6). ``low``: autocast's dtype, which the per-step products then
    run in (on ``W_hh`` cast once here; oneDNN's packed weight is float32 only)."""
    xp, h0, c0, weight = xp.contiguous(), h0.contiguous(), c0.contiguous(), weight.contiguous()
    gains = tuple(g.contiguous() for g in (gain, gain_c, bias_c))
    packed = pack(weight, h0.shape[0]) if low is None else None
    w_low = weight.detach().to(low) if low is not None else None  # (4H, H)
    return _native.ops().lstm_ln_forward(xp, h0, c0, weight, bias, *gains, valid, save, packed, w_low)


class CompiledLayerNormLSTM(torch.autograd.Function):
    r"""torch.nn's LSTM (gate order i, f, g, o) with layer norm of each gate's recurrent
    pre-activation and of the cell state (Ba et al. 2016, sec. 3.1):

    .. math::
        a_t = x'_t + \gamma \odot \mathrm{LN}_4(W_{hh} h_{t-1}) + b_{hh}, \quad
        c_t = f_t c_{t-1} + i_t g_t, \quad
        h_t = o_t \tanh(\mathrm{LN}(c_t; \gamma_c, \beta_c))

    ``hs``, ``cs`` (T, B, H) from ``xp`` (T, B, 4H); the twin of
    :class:`LSTMScan` with ``gain``, ``gain_c``, ``bias_c`` alone. Under
    autocast (``low`` its dtype) the three products -- ``W_hh h`` per step, ``d(u) W_hh`` per step
    backward, ``dW_hh`` per chunk -- run on operands rounded to ``low`` and come back rounded, as
    :class:`~rnnkit.scan._autocast.Products` computes them; everything else stays float32."""

    @staticmethod
    def forward(fctx, xp, h0, c0, weight, bias, gain, gain_c, bias_c, valid, low, twin):
        fctx.twin = twin  # the step loop that differentiates this call again (scan._twin)
        hs, cs, *saved = _sweep(xp, h0, c0, weight, bias, gain, gain_c, bias_c, valid, save=True, low=low)
        fctx.save_for_backward(hs, cs, h0, c0, *saved, weight, gain, gain_c, bias_c, valid)
        fctx.has_bias, fctx.low = bias is not None, low
        return hs, cs

    @staticmethod
    @twin_backward("compiled layer-norm LSTM loop")
    @outside_autocast
    def backward(fctx, dhs, dcs):
        hs, cs, h0, c0, acts, normed, stats, weight, gain, gain_c, bias_c, valid = fctx.saved_tensors
        low = fctx.low
        # d(u) @ W_hh = d(u) @ (W_hh^T)^T; under autocast W_hh in its dtype, cast again rather than kept
        packed = pack(weight.t(), h0.shape[0]) if low is None else None
        w_low = weight.to(low) if low is not None else None  # (4H, H)
        dxp, dh0, dc0, dweight, dbias, dgain, dgain_c, dbias_c = _native.ops().lstm_ln_backward(
            dhs.contiguous(), dcs.contiguous(), hs, cs, h0.contiguous(), c0.contiguous(), acts, normed, stats,
            weight.contiguous(), gain.contiguous(), gain_c.contiguous(), bias_c.contiguous(), fctx.has_bias,
            valid, packed, w_low,
        )  # fmt: skip
        return dxp, dh0, dc0, dweight, (dbias if fctx.has_bias else None), dgain, dgain_c, dbias_c, None, None, None


def _run_bptt(cell: LSTMCell, call: ScanCall) -> ScanResult:
    i, params = _bptt.inputs(cell, call), call.params
    peep = params["weight_ch"] if cell.peepholes else None
    norms = (params["ln_hh_weight"], params["ln_c_weight"], params["ln_c_bias"]) if cell.layer_norm else (None,) * 3
    proj = params["weight_hr"] if cell.proj_size else None
    args = (call.xp, *i.state, i.weight, i.bias, peep, *norms, proj, i.valid, i.h_mask, i.keep, i.products)
    return _bptt.finish(_bptt.apply(LSTMScan, cell, call, i, args), i.valid, call.return_states)


def _supports_compiled(cell: LSTMCell, call: ScanCall) -> bool:
    """The layer-norm LSTM, its one option layer norm (zoneout and dropout would put masks in
    ``ctx``), no projection; under CPU autocast with float32 parameters too."""
    if cell.options.extras() != {"layer_norm"} or cell.proj_size:
        return False
    xp, params = call.xp, call.params
    low = autocast_dtype("cpu") if xp.dtype == torch.float32 else None
    if autocast_enabled("cpu") and low not in LOW:
        return False
    tensors = call.state
    if params is not None:  # None: a layer's whole-stack question, whose parameters share x's dtype
        tensors += (params["weight_hh"], params["ln_hh_weight"], params["ln_c_weight"], params["ln_c_bias"])
    return xp.shape[0] > 0 and applies(xp, under_autocast=True) and all(t.dtype == xp.dtype for t in tensors)


def _run_compiled(cell: LSTMCell, call: ScanCall) -> ScanResult:
    """``xp`` (T, B, 4H) is the input part with its own layer norm and ``b_ih`` applied by
    :meth:`~rnnkit.cells.GatedCell.project_input` (in autograd)."""
    xp, params = call.xp, call.params
    h0, c0 = call.state  # (B, H) each
    gains = (params["ln_hh_weight"], params["ln_c_weight"], params["ln_c_bias"])
    weight, bias = params["weight_hh"], params["bias_hh"] if cell.bias else None
    # under CPU autocast: float32 parameters and states, the products in autocast's bf16/fp16
    low = autocast_dtype("cpu") if xp.dtype == torch.float32 else None
    valid = valid_weights(call.mask, xp)  # (T, B)
    # the ops compute each product's dtype themselves; autocast would turn their float32 products to bf16
    with torch.autocast("cpu", enabled=False):
        if not torch.is_grad_enabled():  # inference: the forward sweep alone, nothing kept for backward
            hs, cs = _sweep(xp, h0, c0, weight, bias, *gains, valid, save=False, low=low)[:2]
        else:
            args = (xp, h0, c0, weight, bias, *gains, valid, low)
            hs, cs = CompiledLayerNormLSTM.apply(*args, Twin(cell, call, args, call.state))
    return _bptt.finish((hs, cs), None if call.mask is None else call.mask.unsqueeze(-1), call.return_states)


COMPILED = Route("compiled", _supports_compiled, _run_compiled)
BPTT = Route("bptt", _bptt.supports, _run_bptt)
#: the LSTM cell's routes, most preferred first: torch.nn's oneDNN/cuDNN kernel beats rnnkit's
#: loops for a plain LSTM; the compiled loop takes the layer-norm LSTM
ROUTES = (TORCH, COMPILED, BPTT)
