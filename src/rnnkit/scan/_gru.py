"""The GRU's time loops, both forms: its hand-written BPTT and its compiled loop, and its routes."""

from __future__ import annotations

import torch

from .. import _native
from ..cells import GRUCell
from . import _bptt
from ._autocast import outside_autocast
from ._bptt import (  # the pieces every family's BPTT shares
    chunk_buffer, chunk_done, each_previous, gain_grad, keep_for_backward, mix, mixes, new_weight, norm,
    norm_backward, one_minus_square, plus_incoming, split_grad, stacked_norms, step_of, times_one_minus,
    weight_grad, with_bias
)
from ._compiled import pack, run_plain, supports_plain, sweep
from ._routes import Route, ScanCall, ScanResult
from ._twin import twin_backward
from ._torch_vf import TORCH


def _new_state(h, n, z, keep, valid, t: int, out, mixing: bool):
    """Both GRU forms' state update into ``out``: ``(1 - z) n + z h``, then zoneout and lengths."""
    n, z = n.to(h.dtype), z.to(h.dtype)  # under autocast the gates are in its dtype, the state is not
    if mixing:
        return mix(h, torch.lerp(n, h, z), step_of(keep, t), None if valid is None else valid[t], out)
    return torch.lerp(n, h, z, out=out)


class GRUScan(torch.autograd.Function):
    """torch.nn's GRU (reset after the recurrent matmul), gate order r, z, n."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, gain, valid, h_mask, keep, products, twin):
        fctx.twin = twin  # the step loop that differentiates this call again (scan._twin)
        steps, batch, G = xp.shape
        H = G // 3
        weight_t = products.operand(weight).t()  # (R, 3H)
        acts = torch.empty_like(xp)  # (T, B, 3H): r, z, n
        rg = xp.new_empty((steps, batch, H))  # r * (W_hn h + b_hn), the reset part of n's pre-activation
        hs = h0.new_empty((steps, batch, H))
        us = torch.empty_like(xp, dtype=h0.dtype) if gain is not None else None
        means, rstds = [], []
        mixing = mixes(keep, valid)
        h = h0
        for t in range(steps):
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                gh = products.addmm(bias, hin, weight_t)  # (B, 3H)
            else:  # each gate's recurrent pre-activation normalised over its H units
                u = products.mm(hin, weight_t, out=us[t]).view(batch, 3, H)
                xhat, mean, rstd = norm(u)
                means.append(mean)
                rstds.append(rstd)
                xhat = xhat.view(batch, G)
                gh = torch.addcmul(bias, xhat, gain) if bias is not None else xhat.mul_(gain)
            a = acts[t]
            rz = torch.add(xp[t, :, : 2 * H], gh[:, : 2 * H], out=a[:, : 2 * H]).sigmoid_()  # (B, 2H)
            reset = torch.mul(rz[:, :H], gh[:, 2 * H :], out=rg[t])
            n = torch.add(xp[t, :, 2 * H :], reset, out=a[:, 2 * H :]).tanh_()  # (B, H)
            h = _new_state(h, n, rz[:, H:], keep, valid, t, hs[t], mixing)
        norms = stacked_norms(us, means, rstds, gain)
        keep_for_backward(fctx, h0, weight, gain, hs, acts, rg, *norms, valid, h_mask, keep=keep, bias=bias,
                           products=products)  # fmt: skip
        return hs

    @staticmethod
    @twin_backward("hand-written BPTT of the GRU")
    @outside_autocast
    def backward(fctx, dhs):
        h0, weight, gain, hs, acts, rg, u, mean, rstd, valid, h_mask = fctx.saved_tensors
        products = fctx.products
        weight = products.operand(weight)
        steps, batch, H = hs.shape
        r, z, n = acts[..., :H], acts[..., H : 2 * H], acts[..., 2 * H :]
        # d(pre r), d(pre z), d(W_hn h + b_hn), d(pre n): local derivatives, then gradients;
        # with dn = (1 - z)(1 - n^2): r: dn (W_hn h + b_hn) r (1 - r), z: (h_{t-1} - n) z (1 - z), n_h: dn r, n: dn
        buf = acts.new_empty((steps, batch, 4 * H))
        dr, dz, dnh, dn = (buf[..., k * H : (k + 1) * H] for k in range(4))
        dgh = buf[..., : 3 * H]  # (T, B, 3H) strided: d(W_hh h + b_hh), gate order r, z, n
        need = fctx.needs_input_grad
        chunk = _bptt.CHUNK  # steps per chunk, read when backward runs
        dus = chunk_buffer(acts) if gain is not None else None
        dweight = None
        weight_new = new_weight(fctx.keep, valid, hs.dtype)
        g = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            if t % chunk == chunk - 1 or t == steps - 1:  # the chunk's local derivatives, while in cache
                part = slice(t - t % chunk, t + 1)
                times_one_minus(one_minus_square(n[part], dn[part]), z[part])
                torch.mul(dn[part], r[part], out=dnh[part])
                times_one_minus(torch.mul(dn[part], rg[part], out=dr[part]), r[part])
                each_previous(h0, hs, dz[part], lambda h, s, out: torch.sub(h, n[s], out=out), part)
                times_one_minus(dz[part].mul_(z[part]), z[part])
            dnew, held = split_grad(plus_incoming(g, dhs, t), weight_new, t)
            buf[t].view(batch, 4, H).mul_(dnew.unsqueeze(1))
            src = dgh[t]
            if gain is not None:
                du = norm_backward((src * gain).view(batch, 3, H), u[t].view(batch, 3, H), mean[t], rstd[t])
                src = dus[t % chunk].copy_(du.view(batch, 3 * H))
                if need[2] and (size := chunk_done(t, steps)):
                    dweight = weight_grad(dus[:size], h0, hs, h_mask, start=t, out=dweight, products=products)
            dh = products.mm(src, weight)  # (B, 3H) @ (3H, R)
            if h_mask is not None:
                dh.mul_(h_mask)
            dh.addcmul_(dnew, z[t])  # h_t = n + z (h_{t-1} - n)
            g = dh if held is None else dh.add_(held)
        if gain is None and need[2]:
            dweight = weight_grad(dgh, h0, hs, h_mask, products=products)
        dbias = dgh.sum((0, 1)).to(h0.dtype) if need[3] and fctx.has_bias else None
        dgain = gain_grad(dgh, u.view(steps, batch, 3, H), mean, rstd) if gain is not None and need[4] else None
        dnh.copy_(dn)  # d(x'_t): as d(W_hh h + b_hh) in r and z, d(pre n) in n
        return dgh, g, dweight, dbias, dgain, None, None, None, None, None


class GRUBeforeScan(torch.autograd.Function):
    r"""The reset-before GRU (Cho et al. 2014, eq. 8):
    :math:`n_t = \tanh(x'_n + W_{hn} (r_t \odot h_{t-1}) + b_{hn})`, the rest as torch.nn's."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, gain, valid, h_mask, keep, products, twin):
        fctx.twin = twin  # the step loop that differentiates this call again (scan._twin)
        steps, batch, G = xp.shape
        H = G // 3
        weight = products.operand(weight)
        w_rz, w_n = weight[: 2 * H].t(), weight[2 * H :].t()  # (R, 2H), (R, H)
        acts = torch.empty_like(xp)  # (T, B, 3H): x'_t + b_hh, then the activations r, z, n
        hs = h0.new_empty((steps, batch, H))
        us = torch.empty_like(xp, dtype=h0.dtype) if gain is not None else None
        means, rstds = [], []
        mixing = mixes(keep, valid)
        h = h0
        for t in range(steps):
            a = with_bias(xp[t], bias, acts[t])
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                products.addmm_(a[:, : 2 * H], hin, w_rz)
            else:
                u = us[t, :, : 2 * H].copy_(products.mm(hin, w_rz)).view(batch, 2, H)
                xhat, mean, rstd = norm(u)
                a[:, : 2 * H].addcmul_(xhat.view(batch, 2 * H), gain[: 2 * H])
            rz = a[:, : 2 * H].sigmoid_()
            rh = rz[:, :H] * h  # the reset gate scales the state before W_hn; dropout still applies
            if h_mask is not None:
                rh.mul_(h_mask)
            if gain is None:
                products.addmm_(a[:, 2 * H :], rh, w_n)
            else:
                u_n = us[t, :, 2 * H :].copy_(products.mm(rh, w_n)).unsqueeze(1)  # (B, 1, H)
                xhat_n, mean_n, rstd_n = norm(u_n)
                a[:, 2 * H :].addcmul_(xhat_n.squeeze(1), gain[2 * H :])
                means.append(torch.cat((mean, mean_n), 1))  # (B, 3, 1)
                rstds.append(torch.cat((rstd, rstd_n), 1))
            n = a[:, 2 * H :].tanh_()
            h = _new_state(h, n, rz[:, H:], keep, valid, t, hs[t], mixing)
        norms = stacked_norms(us, means, rstds, gain)
        keep_for_backward(fctx, h0, weight, gain, hs, acts, *norms, valid, h_mask, keep=keep, bias=bias,
                           products=products)  # fmt: skip
        return hs

    @staticmethod
    @twin_backward("hand-written BPTT of the reset-before GRU")
    @outside_autocast
    def backward(fctx, dhs):
        h0, weight, gain, hs, acts, u, mean, rstd, valid, h_mask = fctx.saved_tensors
        steps, batch, H = hs.shape
        r, z, n = acts[..., :H], acts[..., H : 2 * H], acts[..., 2 * H :]
        products = fctx.products
        weight = products.operand(weight)
        w_rz, w_n = weight[: 2 * H], weight[2 * H :]  # (2H, R), (H, R)
        # d(pre r, z, n) = d(x'_t): first the local derivatives, h_{t-1} r (1 - r) (to be scaled by
        # d(r h)), (h_{t-1} - n) z (1 - z) and (1 - z)(1 - n^2) (by the new state's gradient)
        dgh = torch.empty_like(acts)
        dr, dz, dn = dgh[..., :H], dgh[..., H : 2 * H], dgh[..., 2 * H :]
        need = fctx.needs_input_grad
        chunk = _bptt.CHUNK  # steps per chunk, read when backward runs
        dus = chunk_buffer(acts) if gain is not None else None
        dw_rz = dw_n = None
        weight_new = new_weight(fctx.keep, valid, hs.dtype)
        g = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            if t % chunk == chunk - 1 or t == steps - 1:  # the chunk's local derivatives, while in cache
                part = slice(t - t % chunk, t + 1)
                times_one_minus(one_minus_square(n[part], dn[part]), z[part])
                each_previous(h0, hs, dz[part], lambda h, s, out: torch.sub(h, n[s], out=out), part)
                times_one_minus(dz[part].mul_(z[part]), z[part])
                each_previous(h0, hs, dr[part], lambda h, s, out: torch.mul(h, r[s], out=out), part)
                times_one_minus(dr[part], r[part])
            dnew, held = split_grad(plus_incoming(g, dhs, t), weight_new, t)
            d = dgh[t]
            d[:, H:].view(batch, 2, H).mul_(dnew.unsqueeze(1))
            src_n = d[:, 2 * H :]
            if gain is not None:
                du_n = norm_backward((src_n * gain[2 * H :]).unsqueeze(1), u[t, :, 2 * H :].unsqueeze(1),
                                      mean[t, :, 2:], rstd[t, :, 2:])
                src_n = dus[t % chunk, :, 2 * H :].copy_(du_n.squeeze(1))
            drh = products.mm(src_n, w_n)  # (B, H) @ (H, R): d(r h) after the dropout mask
            if h_mask is not None:
                drh.mul_(h_mask)
            d[:, :H].mul_(drh)
            src_rz = d[:, : 2 * H]
            if gain is not None:
                du_rz = norm_backward((src_rz * gain[: 2 * H]).view(batch, 2, H), u[t, :, : 2 * H].view(batch, 2, H),
                                       mean[t, :, :2], rstd[t, :, :2])
                src_rz = dus[t % chunk, :, : 2 * H].copy_(du_rz.view(batch, 2 * H))
                if need[2] and (size := chunk_done(t, steps)):
                    dw_rz = weight_grad(dus[:size, :, : 2 * H], h0, hs, h_mask, start=t, out=dw_rz, products=products)
                    dw_n = weight_grad(dus[:size, :, 2 * H :], h0, hs, h_mask, gate=r, start=t, out=dw_n,
                                        products=products)  # fmt: skip
            dh = products.mm(src_rz, w_rz)  # (B, 2H) @ (2H, R)
            if h_mask is not None:
                dh.mul_(h_mask)
            dh.addcmul_(drh, r[t]).addcmul_(dnew, z[t])
            g = dh if held is None else dh.add_(held)
        dweight = dbias = dgain = None
        if need[2]:
            if gain is None:
                dw_rz = weight_grad(dgh[..., : 2 * H], h0, hs, h_mask, products=products)
                dw_n = weight_grad(dgh[..., 2 * H :], h0, hs, h_mask, gate=r, products=products)
            dweight = torch.cat((dw_rz, dw_n))
        if need[3] and fctx.has_bias:
            dbias = dgh.sum((0, 1)).to(h0.dtype)
        if gain is not None and need[4]:
            dgain = gain_grad(dgh, u.view(steps, batch, 3, H), mean, rstd)
        return dgh, g, dweight, dbias, dgain, None, None, None, None, None


class CompiledGRU(torch.autograd.Function):
    """The compiled twin of :class:`GRUScan` without options: torch.nn's GRU, ``hs`` (T, B, H)
    from ``xp`` (T, B, 3H)."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, valid, twin):
        fctx.twin = twin  # the step loop that differentiates this call again (scan._twin)
        hs, saved = sweep("gru", xp, h0, weight, bias, valid, save=True)
        fctx.save_for_backward(hs, h0, saved, weight, valid)
        fctx.has_bias = bias is not None
        return hs

    @staticmethod
    @twin_backward("compiled GRU loop")
    @outside_autocast
    def backward(fctx, grad):
        hs, h0, saved, weight, valid = fctx.saved_tensors
        packed = pack(weight.t(), h0.shape[0])  # d(gh) @ W_hh = d(gh) @ (W_hh^T)^T
        dxp, dh0, dweight, dbias = _native.ops().gru_backward(
            grad.contiguous(), hs, h0.contiguous(), saved, weight.contiguous(), fctx.has_bias, valid, packed
        )
        return dxp, dh0, dweight, (dbias if fctx.has_bias else None), None, None


def _run_bptt(cell: GRUCell, call: ScanCall) -> ScanResult:
    i = _bptt.inputs(cell, call)
    gain = call.params["ln_hh_weight"] if cell.layer_norm else None
    function = GRUScan if cell.reset_after else GRUBeforeScan
    args = (call.xp, i.state[0], i.weight, i.bias, gain, i.valid, i.h_mask, _bptt.component(i.keep, 0), i.products)
    return _bptt.finish(_bptt.apply(function, cell, call, i, args), i.valid, call.return_states)


def _run_compiled(cell: GRUCell, call: ScanCall) -> ScanResult:
    return run_plain("gru", CompiledGRU, cell, call)


COMPILED = Route("compiled", supports_plain, _run_compiled)
BPTT = Route("bptt", _bptt.supports, _run_bptt)
#: the GRU cell's routes, most preferred first (the step loop follows them)
ROUTES = (COMPILED, TORCH, BPTT)
