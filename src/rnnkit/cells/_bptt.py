"""Backpropagation through time written out by hand for the gated cells' scan.

The step loop (:func:`~rnnkit.cells._base.step_loop`) lets autograd record every small op of
every step; its backward then replays T x (a dozen) graph nodes. Here each cell family's scan is
one ``torch.autograd.Function``:

* forward: one recurrent matmul per step plus the gate math, saving only what backward reads
  (gate activations, the states);
* backward: a reverse sweep computing each step's pre-activation gradients ``d(gates)_t`` and
  ``dh_{t-1}`` (one matmul per step), then the recurrent weight gradient in ONE matmul over all
  steps, ``(T*B, G*H)^T @ (T*B, R)``, and the bias gradient as a sum.

Covered: Elman (tanh, ReLU), GRU (reset after, torch.nn's form) and LSTM (peepholes), each with
bias on/off, layer norm (the recurrent pre-activations per gate, and the LSTM's cell state; its
backward through aten's fused layer-norm kernel, :func:`_norm_backward`), lengths (past a sequence's end the state is held,
so its ``d(gates)`` are zero), recurrent dropout and dropconnect (the masks of
:class:`~rnnkit.cells._common.Noise`), and zoneout (per-step masks drawn in the step loop's order,
so a seeded run draws the same masks). Anything else -- the reset-before GRU, LSTM projections,
torch.func transforms -- returns None from :func:`fused_scan` and the cell runs its step loop, the plain-autograd twin the
tests hold this module to. Double backward is not supported (``once_differentiable``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._base import Params, State

LAYER_NORM_EPS = 1e-5  # as rnnkit.cells._common, which imports this module


def fused_scan(
    cell, xp: Tensor, state: State, params: Params, ctx: Any, mask: Tensor | None, return_states: bool
) -> tuple[Tensor, State, tuple[Tensor, ...] | None] | None:
    """:meth:`RecurrentCell.scan` through the hand-written BPTT, or None when it does not apply."""
    kind = _kind(cell)
    if kind is None or xp.shape[0] == 0 or torch._C._are_functorch_transforms_active():
        return None
    if _autocast_enabled(xp.device.type):  # mixed dtypes: the step loop follows autocast's casts
        return None
    weight = ctx.weight_hh if ctx is not None and ctx.weight_hh is not None else params["weight_hh"]
    bias = params["bias_hh"] if cell.bias else None
    h_mask = ctx.h_mask if ctx is not None else None
    keep = _zoneout_keep(cell, xp, state, ctx)
    valid = mask.unsqueeze(-1) if mask is not None else None  # (T, B, 1)
    if kind == "lstm":
        peep = params["weight_ch"] if cell.peepholes else None
        norms = (params["ln_hh_weight"], params["ln_c_weight"], params["ln_c_bias"]) if cell.layer_norm else (None,) * 3
        ys, hs, cs = _LSTMScan.apply(xp, state[0], state[1], weight, bias, peep, *norms, valid, h_mask, keep)
        return ys, (hs[-1], cs[-1]), ((hs, cs) if return_states else None)
    function = _GRUScan if kind == "gru" else _ElmanScan
    gain = params["ln_hh_weight"] if cell.layer_norm else None
    ys, hs = function.apply(xp, state[0], weight, bias, gain, valid, h_mask, keep, kind)
    return ys, (hs[-1],), ((hs,) if return_states else None)


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _kind(cell) -> str | None:
    from ._elman import RNNCell
    from ._gru import GRUCell
    from ._lstm import LSTMCell

    if type(cell) is LSTMCell:
        return "lstm" if not cell.proj_size else None
    if type(cell) is RNNCell:
        return cell.nonlinearity
    if type(cell) is GRUCell:
        return "gru" if cell.reset_after else None
    return None


def _zoneout_keep(cell, xp: Tensor, state: State, ctx) -> Tensor | float | tuple | None:
    """Zoneout's keep-the-previous-value weights: per-step 0/1 masks in training (drawn as the step
    loop draws them: one ``rand_like`` per state component per step), the rate at evaluation."""
    rate = cell.zoneout
    if not rate:
        return None
    if not (ctx is not None and ctx.training):
        return rate
    steps = xp.shape[0]
    like = tuple(torch.empty_like(s, dtype=xp.dtype) for s in state)
    draws = [tuple((torch.rand_like(s) < rate).to(xp.dtype) for s in like) for _ in range(steps)]
    return tuple(torch.stack(parts) for parts in zip(*draws))  # per component (T, B, size)


def _zone(keep, index: int, t: int):
    """Zoneout weight of state component ``index`` at step ``t``: a tensor, a float, or None."""
    if keep is None or isinstance(keep, float):
        return keep
    return keep[index][t]


def _apply_zone(previous: Tensor, new: Tensor, k) -> Tensor:
    """``k * previous + (1 - k) * new`` (zoneout, eq. 3 of Krueger et al. 2016)."""
    if k is None:
        return new
    return torch.lerp(new, previous, k) if isinstance(k, Tensor) else k * previous + (1.0 - k) * new


def _recurrent(h: Tensor, h_mask: Tensor | None, weight_t: Tensor, bias: Tensor | None) -> Tensor:
    hin = h if h_mask is None else h * h_mask  # (B, R)
    return torch.addmm(bias, hin, weight_t) if bias is not None else hin.mm(weight_t)  # (B, G*H)


def _norm(u: Tensor, weight: Tensor | None = None, bias: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Layer norm over the last dim: the result, and the ``mean`` and ``rstd`` its backward reads."""
    return torch.native_layer_norm(u, u.shape[-1:], weight, bias, LAYER_NORM_EPS)


def _norm_backward(grad: Tensor, u: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor | None = None) -> Tensor:
    """d(u) from d(layer_norm(u)): aten's fused kernel for
    ``rstd * (g - mean(g) - xhat * mean(g * xhat))``, ``g = grad * weight`` (Ba et al. 2016)."""
    return torch.ops.aten.native_layer_norm_backward(
        grad, u, u.shape[-1:], mean, rstd, weight, None, [True, False, False]
    )[0]


def _normalised(u: Tensor, mean: Tensor, rstd: Tensor) -> Tensor:
    return (u - mean) * rstd


def _weight_grads(dgh: Tensor, hs_prev: Tensor, h_mask, want_weight: bool, want_bias: bool):
    """dW_hh in one matmul over all steps, db_hh as a sum: ``dgh`` (T, B, G*H), ``hs_prev`` (T, B, R)."""
    dweight = dbias = None
    if want_weight:
        hin = hs_prev if h_mask is None else hs_prev * h_mask
        dweight = dgh.flatten(0, 1).t().mm(hin.flatten(0, 1))  # (G*H, T*B) @ (T*B, R)
    if want_bias:
        dbias = dgh.sum((0, 1))  # (G*H,)
    return dweight, dbias


def _hold(valid, t: int, new: Tensor, old: Tensor) -> Tensor:
    return new if valid is None else torch.where(valid[t], new, old)


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


def _sweep(h0, weight, h_mask, valid, dys, dhs, coef, direct, norm=None):
    """The reverse sweep shared by the one-state cells.

    ``coef`` (T, B, G, H) or (T, B, H) maps the gradient of each step's new state (before the
    lengths hold it) to the gradients of the recurrent pre-activations, and ``direct`` (a (T, B, H)
    tensor, a float or None) to the previous state without the matmul; both were computed for all
    steps at once, so the loop is one elementwise product and one matmul per step.
    Under layer norm, ``norm`` is ``(gain (G*H,), u, mean, rstd)``: ``u = W_hh h`` (T, B, G, H)
    and its per-gate statistics (T, B, G, 1).
    Returns ``d(W_hh h + b_hh)`` (T, B, G*H) (after the layer norm), the new-state gradients
    (T, B, H), ``dh_0``, and ``d(W_hh h)`` (T, B, G*H) (before it; the same tensor without it).
    """
    steps, batch = coef.shape[:2]
    dgh = torch.empty_like(coef)
    if norm is not None:
        gain, u, mean, rstd = norm
        gain = gain.view(u.shape[2:])  # (G, H)
        dus = u.new_empty(u.shape)
    dnews = h0.new_empty((steps,) + h0.shape)
    if valid is None:
        dtot = _add(dys, dhs)  # the outputs are the states
    else:
        m = valid.to(h0.dtype)  # (T, B, 1)
        held = 1.0 - m
        mdy = dys * m if dys is not None else None
    g = torch.zeros_like(h0)
    for t in range(steps - 1, -1, -1):
        if valid is None:
            dnew = torch.add(g, dtot[t], out=dnews[t])
        else:
            a = g + dhs[t] if dhs is not None else g
            dnew = torch.addcmul(mdy[t], a, m[t], out=dnews[t]) if mdy is not None else torch.mul(a, m[t], out=dnews[t])
        dg = torch.mul(coef[t], dnew.unsqueeze(1) if coef.dim() == 4 else dnew, out=dgh[t])
        if norm is not None:
            dg = dus[t]
            dg.copy_(_norm_backward(dgh[t].view(dg.shape) * gain, u[t], mean[t], rstd[t]))
        dh = dg.view(batch, -1).mm(weight)  # (B, G*H) @ (G*H, R)
        if h_mask is not None:
            dh.mul_(h_mask)
        if isinstance(direct, Tensor):
            dh.addcmul_(dnew, direct[t])
        elif direct:
            dh.add_(dnew, alpha=direct)
        if valid is not None:  # past the end the state is held: its gradient passes straight back
            dh.addcmul_(a, held[t])
        g = dh
    dgh = dgh.flatten(2) if coef.dim() == 4 else dgh
    return dgh, dnews, g, (dgh if norm is None else dus.flatten(2))


def _norm_grads(dgh, du, hs_prev, h_mask, norm, need, has_bias):
    """dW_hh (one matmul), db_hh and the layer-norm gain's gradient of a one-state cell."""
    dweight, _ = _weight_grads(du, hs_prev, h_mask, need[2], False)
    dbias = dgh.sum((0, 1)) if need[3] and has_bias else None
    dgain = None
    if norm is not None and need[4]:
        dgain = (dgh * _normalised(*norm[1:]).flatten(2)).sum((0, 1))
    return dweight, dbias, dgain


def _keep_weight(keep):
    """Zoneout's keep weight of the first state component, for all steps: (T, B, H), float or None."""
    return keep if keep is None or isinstance(keep, float) else keep[0]


def _scale(x: Tensor, k) -> Tensor:
    return x if k is None else x * (1.0 - k)


class _ElmanScan(torch.autograd.Function):
    r""":math:`h_t = \phi(x'_t + W_{hh} (m \odot h_{t-1}) + b_{hh})`, then zoneout and lengths."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, gain, valid, h_mask, keep, kind):
        weight_t = weight.t()
        xpb = xp + bias if bias is not None else xp  # (T, B, H): fold b_hh in once
        hs, acts, normed = [], [], []
        h = h0
        for t, xpb_t in enumerate(xpb.unbind(0)):
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                pre = torch.addmm(xpb_t, hin, weight_t)  # (B, H)
            else:
                u = hin.mm(weight_t).unsqueeze(1)  # (B, 1, H)
                xhat, mean, rstd = _norm(u)
                normed.append((u, mean, rstd))
                pre = torch.addcmul(xpb_t, xhat.squeeze(1), gain)
            a = pre.tanh_() if kind == "tanh" else pre.relu_()
            acts.append(a)
            h = _hold(valid, t, _apply_zone(h, a, _zone(keep, 0, t)), h)
            hs.append(h)
        hs = torch.stack(hs)  # (T, B, H)
        acts = hs if keep is None and valid is None else torch.stack(acts)
        ys = hs.clone() if valid is None else hs * valid  # outputs are zero past the end
        norms = tuple(torch.stack(parts) for parts in zip(*normed)) if normed else (None,) * 3
        fctx.save_for_backward(h0, weight, gain, hs, acts, *norms, valid, h_mask)
        fctx.keep, fctx.kind, fctx.has_bias = keep, kind, bias is not None
        return ys, hs

    @staticmethod
    @once_differentiable
    def backward(fctx, dys, dhs):
        h0, weight, gain, hs, acts, u, mean, rstd, valid, h_mask = fctx.saved_tensors
        k = _keep_weight(fctx.keep)
        slope = (acts > 0).to(acts.dtype) if fctx.kind == "relu" else 1.0 - acts * acts  # phi'(pre)
        norm = (gain, u, mean, rstd) if gain is not None else None
        dgh, _, dh0, du = _sweep(h0, weight, h_mask, valid, dys, dhs, _scale(slope, k), k, norm)
        hs_prev = torch.cat((h0.unsqueeze(0), hs[:-1]))  # (T, B, H)
        grads = _norm_grads(dgh, du, hs_prev, h_mask, norm, fctx.needs_input_grad, fctx.has_bias)
        return (dgh, dh0, *grads, None, None, None, None)


class _GRUScan(torch.autograd.Function):
    """torch.nn's GRU (reset after the recurrent matmul), gate order r, z, n."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, gain, valid, h_mask, keep, kind):
        batch, H = h0.shape
        weight_t = weight.t()
        hs, rzs, ns, ghs, normed = [], [], [], [], []
        h = h0
        for t, (x_rz, x_n) in enumerate(zip(xp[..., : 2 * H].unbind(0), xp[..., 2 * H :].unbind(0))):
            if gain is None:
                gh = _recurrent(h, h_mask, weight_t, bias)  # (B, 3H)
            else:  # each gate's recurrent pre-activation normalised over its H units
                u = _recurrent(h, h_mask, weight_t, None).view(batch, 3, H)
                xhat, mean, rstd = _norm(u)
                normed.append((u, mean, rstd))
                xhat = xhat.view(batch, 3 * H)
                gh = torch.addcmul(bias, xhat, gain) if bias is not None else xhat * gain
            rz = torch.add(x_rz, gh[:, : 2 * H]).sigmoid_()  # (B, 2H)
            n = torch.addcmul(x_n, rz[:, :H], gh[:, 2 * H :]).tanh_()  # (B, H)
            h_new = torch.lerp(n, h, rz[:, H:])  # (1 - z) n + z h
            h = _hold(valid, t, _apply_zone(h, h_new, _zone(keep, 0, t)), h)
            hs.append(h)
            rzs.append(rz)
            ns.append(n)
            ghs.append(gh)
        hs = torch.stack(hs)  # (T, B, H)
        ys = hs.clone() if valid is None else hs * valid  # outputs are zero past the end
        norms = tuple(torch.stack(parts) for parts in zip(*normed)) if normed else (None,) * 3
        saved = (torch.stack(rzs), torch.stack(ns), torch.stack(ghs))
        fctx.save_for_backward(h0, weight, gain, hs, *saved, *norms, valid, h_mask)
        fctx.keep, fctx.has_bias = keep, bias is not None
        return ys, hs

    @staticmethod
    @once_differentiable
    def backward(fctx, dys, dhs):
        h0, weight, gain, hs, rz, n, gh, u, mean, rstd, valid, h_mask = fctx.saved_tensors
        k = _keep_weight(fctx.keep)
        H = h0.shape[-1]
        r, z, hn = rz[..., :H], rz[..., H:], gh[..., 2 * H :]  # each (T, B, H)
        hs_prev = torch.cat((h0.unsqueeze(0), hs[:-1]))  # (T, B, H)
        # h_t = n + z (h_{t-1} - n): d/d(pre n) = (1 - z)(1 - n^2), d/d(pre z) = (h - n) z (1 - z)
        dn = _scale((1.0 - z) * (1.0 - n * n), k)
        coef = hs.new_empty(hs.shape[:2] + (3, H))  # (T, B, 3, H): to d(W_h{r,z,n} h + b)
        coef[:, :, 0] = dn * hn * r * (1.0 - r)
        coef[:, :, 1] = _scale((hs_prev - n) * z * (1.0 - z), k)
        coef[:, :, 2] = dn * r
        direct = z if k is None else torch.lerp(z, torch.ones_like(z), k) if isinstance(k, Tensor) else (1 - k) * z + k
        norm = (gain, u, mean, rstd) if gain is not None else None
        dgh, dnews, dh0, du = _sweep(h0, weight, h_mask, valid, dys, dhs, coef, direct, norm)
        dxp = dgh.clone()  # (T, B, 3H): equal to dgh but in the n block, where r does not act
        dxp[..., 2 * H :] = dn * dnews
        grads = _norm_grads(dgh, du, hs_prev, h_mask, norm, fctx.needs_input_grad, fctx.has_bias)
        return (dxp, dh0, *grads, None, None, None, None)


class _LSTMScan(torch.autograd.Function):
    """torch.nn's LSTM (gate order i, f, g, o), with optional peepholes (Gers et al. 2002)."""

    @staticmethod
    def forward(fctx, xp, h0, c0, weight, bias, peep, gain, gain_c, bias_c, valid, h_mask, keep):
        batch, H = c0.shape
        weight_t = weight.t()
        xpb = xp + bias if bias is not None else xp  # (T, B, 4H): fold b_hh in once
        if peep is not None:
            p_if, p_o = peep[: 2 * H].view(2, H), peep[2 * H :]
        hs, cs, sigs, tgs, cns, tcs, normed = [], [], [], [], [], [], []
        h, c = h0, c0
        for t, xpb_t in enumerate(xpb.unbind(0)):
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                pre = torch.addmm(xpb_t, hin, weight_t)  # (B, 4H)
            else:  # each gate's recurrent pre-activation normalised over its H units
                u = hin.mm(weight_t).view(batch, 4, H)
                xhat, mean, rstd = _norm(u)  # (B, 4, H), (B, 4, 1), (B, 4, 1)
                pre = torch.addcmul(xpb_t, xhat.view(batch, 4 * H), gain)
            if peep is not None:  # the input and forget gates peek at the previous cell state
                pre.view(batch, 4, H)[:, :2].addcmul_(c.unsqueeze(1), p_if)
            sig = torch.sigmoid(pre)  # (B, 4H); its g block is unused
            tg = pre[:, 2 * H : 3 * H].tanh()
            c_new = torch.addcmul(sig[:, H : 2 * H] * c, sig[:, :H], tg)
            if peep is not None:  # the output gate peeks at the new one
                sig[:, 3 * H :] = torch.addcmul(pre[:, 3 * H :], c_new, p_o).sigmoid_()
            if gain_c is None:
                tc = c_new.tanh()
            else:
                c_out, mean_c, rstd_c = _norm(c_new, gain_c, bias_c)  # (B, H), (B, 1), (B, 1)
                tc = c_out.tanh_()
                normed.append((u, mean, rstd, mean_c, rstd_c))
            h_new = sig[:, 3 * H :] * tc
            h_next = _hold(valid, t, _apply_zone(h, h_new, _zone(keep, 0, t)), h)
            c = _hold(valid, t, _apply_zone(c, c_new, _zone(keep, 1, t)), c)
            h = h_next
            for store, value in ((hs, h), (cs, c), (sigs, sig), (tgs, tg), (cns, c_new), (tcs, tc)):
                store.append(value)
        hs, cs = torch.stack(hs), torch.stack(cs)  # (T, B, H)
        ys = hs.clone() if valid is None else hs * valid  # outputs are zero past the end
        saved = (torch.stack(sigs), torch.stack(tgs), torch.stack(cns), torch.stack(tcs))
        norms = tuple(torch.stack(parts) for parts in zip(*normed)) if normed else (None,) * 5
        fctx.save_for_backward(h0, c0, weight, peep, gain, gain_c, hs, cs, *saved, *norms, valid, h_mask)
        fctx.keep, fctx.has_bias = keep, bias is not None
        return ys, hs, cs

    @staticmethod
    @once_differentiable
    def backward(fctx, dys, dhs, dcs):
        h0, c0, weight, peep, gain, gain_c, hs, cs, sig, tg, c_new, tc, u, mean, rstd, mean_c, rstd_c, valid, h_mask = fctx.saved_tensors
        # (T, B, 4, H) and (T, B, 4, 1) twice: the gates' layer norm; (T, B, 1) twice: the cell state's
        keep = fctx.keep
        steps, batch, H = cs.shape
        kh, kc = (keep, keep) if keep is None or isinstance(keep, float) else keep
        si, sf, so = sig[..., :H], sig[..., H : 2 * H], sig[..., 3 * H :]  # each (T, B, H)
        c_prev = torch.cat((c0.unsqueeze(0), cs[:-1]))  # (T, B, H)
        # every step's local derivatives at once; the sweep then only multiplies and matmuls
        dso = tc * so * (1.0 - so)  # d h_new / d(pre o)
        to_c = so * (1.0 - tc * tc)  # d h_new / d c_new, or d c_out under layer norm
        if peep is not None:
            p_i, p_f, p_o = peep.chunk(3)
            if gain_c is None:
                to_c = torch.addcmul(to_c, dso, p_o)
            else:  # the output gate's peephole reads c_new, not its normalised c_out
                peep_c = _scale(dso * p_o, kh)
        coef = cs.new_empty((steps, batch, 3, H))  # d c_new -> d(pre i, f, g)
        coef[:, :, 0] = tg * si * (1.0 - si)
        coef[:, :, 1] = c_prev * sf * (1.0 - sf)
        coef[:, :, 2] = si * (1.0 - tg * tg)
        to_c_prev = sf  # d c_new -> d c_{t-1}
        if peep is not None:
            to_c_prev = sf + coef[:, :, 0] * p_i + coef[:, :, 1] * p_f
        dso, to_c = _scale(dso, kh), _scale(to_c, kh)
        dgh = cs.new_empty((steps, batch, 4, H))
        if gain is not None:
            dus = torch.empty_like(dgh)  # (T, B, 4, H): d(W_hh h), before the gates' layer norm
            gain4 = gain.view(4, H)
        if gain_c is not None:
            dh_news = torch.empty_like(cs)
        if valid is None:
            dh_in = _add(dys, dhs)
        else:
            m = valid.to(cs.dtype)  # (T, B, 1)
            held = 1.0 - m
            mdy = dys * m if dys is not None else None
        gh, gc = torch.zeros_like(h0), torch.zeros_like(c0)
        for t in range(steps - 1, -1, -1):
            if dcs is not None:
                gc = gc + dcs[t]
            if valid is None:
                dh_new = gh + dh_in[t]
                dc_new = gc
            else:
                gh = gh + dhs[t] if dhs is not None else gh
                dh_new = torch.addcmul(mdy[t], gh, m[t]) if mdy is not None else gh * m[t]
                dc_new = gc * m[t]
            dc_kept = _scale(dc_new, kc if kc is None or isinstance(kc, float) else kc[t])
            if gain_c is None:
                dcc = torch.addcmul(dc_kept, dh_new, to_c[t])
            else:
                dh_news[t] = dh_new
                dcc = _norm_backward(dh_new * to_c[t], c_new[t], mean_c[t], rstd_c[t], gain_c).add_(dc_kept)
                if peep is not None:
                    dcc.addcmul_(dh_new, peep_c[t])
            dg = dgh[t]
            torch.mul(coef[t], dcc.unsqueeze(1), out=dg[:, :3])
            torch.mul(dso[t], dh_new, out=dg[:, 3])
            if gain is not None:
                dg = dus[t]
                dg.copy_(_norm_backward(dgh[t] * gain4, u[t], mean[t], rstd[t]))
            dh = dg.view(batch, -1).mm(weight)  # (B, 4H) @ (4H, H)
            dc = dcc * to_c_prev[t]
            if h_mask is not None:
                dh.mul_(h_mask)
            if kh is not None:
                dh.addcmul_(dh_new, kh[t]) if isinstance(kh, Tensor) else dh.add_(dh_new, alpha=kh)
                dc.addcmul_(dc_new, kc[t]) if isinstance(kc, Tensor) else dc.add_(dc_new, alpha=kc)
            if valid is not None:  # past the end the state is held: its gradient passes straight back
                dh.addcmul_(gh, held[t])
                dc.addcmul_(gc, held[t])
            gh, gc = dh, dc
        dgh = dgh.flatten(2)  # (T, B, 4H)
        hs_prev = torch.cat((h0.unsqueeze(0), hs[:-1]))  # (T, B, H)
        need = fctx.needs_input_grad
        du = dgh if gain is None else dus.flatten(2)
        dweight, _ = _weight_grads(du, hs_prev, h_mask, need[3], False)
        dbias = dgh.sum((0, 1)) if need[4] and fctx.has_bias else None
        dgain = dgain_c = dbias_c = None
        if gain is not None:
            dgain = (dgh * _normalised(u, mean, rstd).flatten(2)).sum((0, 1))
            d_cout = dh_news * to_c  # (T, B, H)
            dgain_c = (d_cout * _normalised(c_new, mean_c, rstd_c)).sum((0, 1))
            dbias_c = d_cout.sum((0, 1))
        dpeep = None
        if peep is not None and need[5]:
            dpeep = torch.cat(
                (
                    (dgh[..., :H] * c_prev).sum((0, 1)),
                    (dgh[..., H : 2 * H] * c_prev).sum((0, 1)),
                    (dgh[..., 3 * H :] * c_new).sum((0, 1)),
                )
            )
        return dgh, gh, gc, dweight, dbias, dpeep, dgain, dgain_c, dbias_c, None, None, None
