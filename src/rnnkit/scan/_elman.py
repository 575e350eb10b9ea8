"""The Elman RNN's time loops: its hand-written BPTT and its compiled loop, and its routes."""

from __future__ import annotations

import torch

from .. import _native
from ..cells import RNNCell
from . import _bptt
from ._autocast import outside_autocast
from ._bptt import (  # the pieces every family's BPTT shares
    chunk_buffer, chunk_done, gain_grad, keep_for_backward, mix, mixes, new_weight, norm, norm_backward,
    one_minus_square, plus_incoming, split_grad, stacked_norms, step_of, weight_grad, with_bias
)
from ._compiled import pack, run_plain, supports_plain, sweep
from ._routes import Route, ScanCall, ScanResult
from ._twin import twin_backward
from ._torch_vf import TORCH

class ElmanScan(torch.autograd.Function):
    r""":math:`h_t = \phi(x'_t + W_{hh} (m \odot h_{t-1}) + b_{hh})`, then zoneout and lengths."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, gain, valid, h_mask, keep, kind, products, twin):
        fctx.twin = twin  # the step loop that differentiates this call again (scan._twin)
        steps, batch, H = xp.shape
        weight_t = products.operand(weight).t()  # (R, H)
        acts = torch.empty_like(xp)  # (T, B, H): x'_t + b_hh, then the activations
        mixing = mixes(keep, valid)
        apart = mixing or acts.dtype != h0.dtype  # the states are not the activations themselves
        hs = torch.empty_like(acts, dtype=h0.dtype) if apart else acts
        us = torch.empty_like(hs) if gain is not None else None  # W_hh h, before the layer norm
        means, rstds = [], []
        h = h0
        for t in range(steps):
            a = with_bias(xp[t], bias, acts[t])  # (B, H)
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                products.addmm_(a, hin, weight_t)
            else:
                u = products.mm(hin, weight_t, out=us[t]).unsqueeze(1)  # (B, 1, H)
                xhat, mean, rstd = norm(u)
                means.append(mean)
                rstds.append(rstd)
                a.addcmul_(xhat.squeeze(1), gain)
            a = a.tanh_() if kind == "tanh" else a.relu_()
            h = mix(h, a, step_of(keep, t), None if valid is None else valid[t], hs[t]) if apart else a
        norms = stacked_norms(us, means, rstds, gain)
        keep_for_backward(fctx, h0, weight, gain, hs, acts if apart else None, *norms, valid, h_mask,
                           keep=keep, bias=bias, kind=kind, products=products)  # fmt: skip
        return hs

    @staticmethod
    @twin_backward("hand-written BPTT of the Elman RNN")
    @outside_autocast
    def backward(fctx, dhs):
        h0, weight, gain, hs, acts, u, mean, rstd, valid, h_mask = fctx.saved_tensors
        products = fctx.products
        weight = products.operand(weight)
        acts = hs if acts is None else acts
        steps, batch, H = acts.shape
        dgh = torch.empty_like(acts)  # (T, B, H): phi'(pre) now, d(pre) after the sweep
        if fctx.kind == "relu":
            dgh.copy_(acts > 0)
        else:
            one_minus_square(acts, dgh)
        need = fctx.needs_input_grad
        dus = chunk_buffer(dgh) if gain is not None else None
        dweight = None
        weight_new = new_weight(fctx.keep, valid, acts.dtype)
        g = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            dnew, held = split_grad(plus_incoming(g, dhs, t), weight_new, t)
            src = dgh[t].mul_(dnew)
            if gain is not None:
                du = norm_backward((src * gain).unsqueeze(1), u[t].unsqueeze(1), mean[t], rstd[t])
                src = dus[t % _bptt.CHUNK].copy_(du.squeeze(1))
                if need[2] and (size := chunk_done(t, steps)):
                    dweight = weight_grad(dus[:size], h0, hs, h_mask, start=t, out=dweight, products=products)
            g = products.mm(src, weight)  # (B, H) @ (H, R)
            if h_mask is not None:
                g.mul_(h_mask)
            if held is not None:
                g.add_(held)
        if gain is None and need[2]:
            dweight = weight_grad(dgh, h0, hs, h_mask, products=products)
        dbias = dgh.sum((0, 1)).to(h0.dtype) if need[3] and fctx.has_bias else None
        dgain = gain_grad(dgh, u.unsqueeze(2), mean, rstd) if gain is not None and need[4] else None
        return dgh, g, dweight, dbias, dgain, None, None, None, None, None, None


class CompiledElman(torch.autograd.Function):
    r"""The compiled twin of :class:`ElmanScan` without options:
    :math:`h_t = \phi(x'_t + W_{hh} h_{t-1} + b_{hh})`."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, valid, relu, twin):
        fctx.twin = twin  # the step loop that differentiates this call again (scan._twin)
        hs, acts = sweep("relu" if relu else "tanh", xp, h0, weight, bias, valid, save=True)
        fctx.save_for_backward(hs, acts, h0, weight, valid)
        fctx.has_bias, fctx.relu = bias is not None, relu
        return hs

    @staticmethod
    @twin_backward("compiled Elman loop")
    @outside_autocast
    def backward(fctx, grad):
        hs, acts, h0, weight, valid = fctx.saved_tensors
        packed = pack(weight.t(), h0.shape[0])
        dxp, dh0, dweight, dbias = _native.ops().elman_backward(
            grad.contiguous(), hs, acts, h0.contiguous(), weight.contiguous(), fctx.has_bias, valid, fctx.relu, packed
        )
        return dxp, dh0, dweight, (dbias if fctx.has_bias else None), None, None, None


def _run_bptt(cell: RNNCell, call: ScanCall) -> ScanResult:
    i = _bptt.inputs(cell, call)
    gain = call.params["ln_hh_weight"] if cell.layer_norm else None
    args = (call.xp, i.state[0], i.weight, i.bias, gain, i.valid, i.h_mask, _bptt.component(i.keep, 0),
            cell.nonlinearity, i.products)  # fmt: skip
    return _bptt.finish(_bptt.apply(ElmanScan, cell, call, i, args), i.valid, call.return_states)


def _run_compiled(cell: RNNCell, call: ScanCall) -> ScanResult:
    return run_plain(cell.nonlinearity, CompiledElman, cell, call, cell.nonlinearity == "relu")


COMPILED = Route("compiled", supports_plain, _run_compiled)
BPTT = Route("bptt", _bptt.supports, _run_bptt)
#: the Elman cell's routes, most preferred first (the step loop follows them)
ROUTES = (COMPILED, TORCH, BPTT)
