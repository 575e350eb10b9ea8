// rnnkit's compiled time loops: the recurrences of one direction of one layer, forward and
// backward, for the Elman RNN (tanh, ReLU), torch.nn's GRU (reset after the recurrent matmul), the
// layer-norm LSTM and the elementwise linear recurrence of minGRU/minLSTM; and one streaming step
// of a whole plain Elman/GRU/LSTM stack (stack_step, at the end).
//
// Why: torch.nn runs the GRU and Elman RNN on CPU as a native loop of separate ATen ops whose
// backward is replayed op by op by autograd (about a dozen graph nodes per step). Here each step
// is ONE recurrent matmul (MKL through at::addmm_out) plus ONE pass over the B x H elements that
// does all the gate math, vectorised (built with -ffast-math so that exp/tanh use glibc's vector
// math). The backward is the same shape in reverse, and the recurrent weight gradient is one
// matmul over all steps at the end. The input projection (x W_ih^T + b_ih for all steps) stays
// outside, in one matmul recorded by autograd.
//
// Layouts (contiguous, time-major): xp (T, B, G*H) with torch.nn's gate order (GRU: r, z, n;
// LSTM: i, f, g, o);
// h0 (B, H); w_hh (G*H, H); b_hh (G*H) or undefined; valid (T, B) of 0/1 or undefined: past a
// sequence's end its state is held (and its gradient passes straight back).
// The plain-PyTorch twin of every function here is rnnkit/cells/_bptt.py, and the tests hold the
// two to each other.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

// Inside AT_DISPATCH's lambda a #pragma is not allowed; the _Pragma operator is.
#define RNNKIT_SIMD _Pragma("omp simd")
// A vectorised loop that also sums into the variables sum1 and sum2 (omp simd without the
// reduction clause would let the lanes race on them).
#define RNNKIT_SIMD_SUMS _Pragma("omp simd reduction(+ : sum1, sum2)")

namespace {

using at::Tensor;

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

inline void check_inputs(const Tensor& xp, const Tensor& h0, const Tensor& w_hh, int64_t gates) {
  TORCH_CHECK(xp.dim() == 3 && xp.is_contiguous(), "xp must be a contiguous (T, B, G*H) tensor");
  TORCH_CHECK(h0.dim() == 2 && h0.is_contiguous(), "h0 must be a contiguous (B, H) tensor");
  const int64_t H = h0.size(1);
  TORCH_CHECK(xp.size(1) == h0.size(0) && xp.size(2) == gates * H, "xp and h0 do not fit");
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == gates * H && w_hh.size(1) == H, "w_hh must be (G*H, H)");
  TORCH_CHECK(xp.scalar_type() == h0.scalar_type() && xp.scalar_type() == w_hh.scalar_type(), "dtypes differ");
}

// Rows of the batch in parallel: big enough chunks that small batches stay on one thread.
template <typename F>
inline void for_rows(int64_t rows, int64_t width, const F& body) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, width));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) body(b);
  });
}

// The recurrent weight as the right operand of a (B, H) @ (H, G*H) product: the transposed view,
// which mm hands to MKL as a transposed operand (no copy). A plain mm measured faster than addmm
// with the bias (added in the elementwise pass instead).
inline Tensor right_operand(const Tensor& w_hh) {
  return w_hh.t();
}

// One step's product x @ W^T: oneDNN's matmul on a weight packed once per call
// (mkldnn::_linear_pointwise, packed by mkldnn::_reorder_linear_weight in Python) where `packed`
// is given, else MKL's mm into `out`. At the few rows of a step (B = 16-32) the packed product
// measured 1.05-2x MKL's from 3 x 256 x 256 weights (docs/performance.md); the caller packs
// only there.
inline Tensor step_product(const Tensor& x, const Tensor& w_t, const c10::optional<Tensor>& packed, Tensor& out) {
  if (!packed.has_value()) {
    at::mm_out(out, x, w_t);
    return out;
  }
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "");
  std::vector<c10::IValue> stack{x, *packed, c10::IValue(), std::string("none"),
                                 c10::List<c10::optional<at::Scalar>>(), c10::IValue()};
  op.callBoxed(&stack);
  return stack[0].toTensor();
}

// One step's product under autocast (the layer-norm LSTM's): x rounded to w_low's dtype (bf16 or
// fp16, autocast's), multiplied there, and the result, rounded to that dtype as autocast's matmul
// rounds it, copied into the float32 `out` -- rnnkit.scan._autocast.Products' mm, the same op on the
// same operands, so the PyTorch twin's numbers.
inline Tensor low_product(const Tensor& x, const Tensor& w_low, Tensor& out) {
  out.copy_(at::mm(x.to(w_low.scalar_type()), w_low));
  return out;
}

// b_hh, or zeros where the layer has none, so the elementwise passes need no branch.
inline Tensor bias_or_zeros(const c10::optional<Tensor>& b_hh, const Tensor& w_hh) {
  return b_hh.has_value() ? b_hh->contiguous() : at::zeros({w_hh.size(0)}, w_hh.options());
}

// dW_hh and db_hh from every step's d(W_hh h + b_hh) (T, B, G*H): ONE matmul over all steps
// against the states they multiplied, h_0 .. h_{T-1}, and a sum (undefined without bias).
std::tuple<Tensor, Tensor> recurrent_grads(const Tensor& d, const Tensor& hs, const Tensor& h0, bool has_bias) {
  const int64_t T = hs.size(0), B = h0.size(0), H = h0.size(1);
  const Tensor hs_prev = at::cat({h0.unsqueeze(0), hs.narrow(0, 0, T - 1)});      // (T, B, H)
  Tensor dw = at::mm(d.view({T * B, d.size(2)}).t(), hs_prev.view({T * B, H}));  // (G*H, T*B) @ (T*B, H)
  return {dw, has_bias ? d.sum({0, 1}) : Tensor()};
}

// --- GRU ----------------------------------------------------------------------------------
// r = s(xr + W_hr h + b_hr), z = s(xz + W_hz h + b_hz), n = tanh(xn + r (W_hn h + b_hn)),
// h' = n + z (h - n). Saved per step for backward: r, z, n and W_hn h + b_hn, as (T, B, 4H).

std::tuple<Tensor, Tensor> gru_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh,
                                       const c10::optional<Tensor>& b_hh, const c10::optional<Tensor>& valid,
                                       bool save, const c10::optional<Tensor>& packed) {
  check_inputs(xp, h0, w_hh, 3);
  const int64_t T = xp.size(0), B = h0.size(0), H = h0.size(1);
  Tensor hs = at::empty({T, B, H}, h0.options());
  Tensor saved = save ? at::empty({T, B, 4 * H}, h0.options()) : Tensor();
  Tensor gh = at::empty({B, 3 * H}, h0.options());  // W_hh h of one step
  const Tensor w_t = right_operand(w_hh);
  const Tensor bias = bias_or_zeros(b_hh, w_hh);
  const Tensor mask = valid.has_value() ? valid->to(h0.scalar_type()).contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "rnnkit_gru_forward", [&] {
    for (int64_t t = 0; t < T; ++t) {
      const Tensor h_prev = t == 0 ? h0 : hs[t - 1];
      const Tensor product = step_product(h_prev, w_t, packed, gh);  // (B, H) @ (H, 3H)
      const scalar_t* x = xp.data_ptr<scalar_t>() + t * B * 3 * H;
      const scalar_t* g = product.data_ptr<scalar_t>();
      const scalar_t* bh = bias.data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.data_ptr<scalar_t>();
      scalar_t* hn = hs.data_ptr<scalar_t>() + t * B * H;
      scalar_t* s = save ? saved.data_ptr<scalar_t>() + t * B * 4 * H : nullptr;
      const scalar_t* m = mask.defined() ? mask.data_ptr<scalar_t>() + t * B : nullptr;
      for_rows(B, 3 * H, [&](int64_t b) {
        const scalar_t* xb = x + b * 3 * H;
        const scalar_t* gb = g + b * 3 * H;
        const scalar_t* hb = hp + b * H;
        scalar_t* ob = hn + b * H;
        if (m != nullptr && m[b] == scalar_t(0)) {  // past the end: hold the state
          for (int64_t j = 0; j < H; ++j) ob[j] = hb[j];
          if (s != nullptr) {
            scalar_t* sb = s + b * 4 * H;
            for (int64_t j = 0; j < 4 * H; ++j) sb[j] = scalar_t(0);
          }
          return;
        }
        if (s != nullptr) {
          scalar_t* sb = s + b * 4 * H;
RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t r = sigmoid(xb[j] + gb[j] + bh[j]);
            const scalar_t z = sigmoid(xb[H + j] + gb[H + j] + bh[H + j]);
            const scalar_t ghn = gb[2 * H + j] + bh[2 * H + j];
            const scalar_t n = std::tanh(xb[2 * H + j] + r * ghn);
            ob[j] = n + z * (hb[j] - n);
            sb[j] = r;
            sb[H + j] = z;
            sb[2 * H + j] = n;
            sb[3 * H + j] = ghn;
          }
        } else {
RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t r = sigmoid(xb[j] + gb[j] + bh[j]);
            const scalar_t z = sigmoid(xb[H + j] + gb[H + j] + bh[H + j]);
            const scalar_t n = std::tanh(xb[2 * H + j] + r * (gb[2 * H + j] + bh[2 * H + j]));
            ob[j] = n + z * (hb[j] - n);
          }
        }
      });
    }
  });
  return {hs, saved};
}

// grad (T, B, H): the gradient reaching each step's state from outside the recurrence (the
// outputs' gradient where the sequence is running, plus the states' own). Returns d(xp), dh0,
// dW_hh, db_hh (undefined without bias).
//
// The gradient reaching h_{t-1} has two parts, kept apart until the next (earlier) step's pass
// adds them: `through` = d(gh_t) @ W_hh (the matmul) and `direct` = dL/dh_t * z_t (the gate's
// copy of the old state; the whole gradient where the state is held).
std::tuple<Tensor, Tensor, Tensor, Tensor> gru_backward(const Tensor& grad, const Tensor& hs, const Tensor& h0,
                                                        const Tensor& saved, const Tensor& w_hh, bool has_bias,
                                                        const c10::optional<Tensor>& valid,
                                                        const c10::optional<Tensor>& packed) {
  const int64_t T = hs.size(0), B = h0.size(0), H = h0.size(1);
  TORCH_CHECK(grad.is_contiguous() && saved.is_contiguous() && hs.is_contiguous(), "gru_backward: non-contiguous");
  Tensor dxp = at::empty({T, B, 3 * H}, h0.options());
  Tensor dgh = at::empty({T, B, 3 * H}, h0.options());  // d(W_hh h + b_hh)
  Tensor through = at::zeros({B, H}, h0.options());
  Tensor direct = at::zeros({B, H}, h0.options());
  const Tensor w = w_hh.contiguous();
  const Tensor mask = valid.has_value() ? valid->to(h0.scalar_type()).contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnnkit_gru_backward", [&] {
    for (int64_t t = T - 1; t >= 0; --t) {
      const scalar_t* e = grad.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* s = saved.data_ptr<scalar_t>() + t * B * 4 * H;
      const scalar_t* hp = (t == 0 ? h0 : hs[t - 1]).data_ptr<scalar_t>();
      const scalar_t* c = through.data_ptr<scalar_t>();
      scalar_t* dx = dxp.data_ptr<scalar_t>() + t * B * 3 * H;
      scalar_t* dg = dgh.data_ptr<scalar_t>() + t * B * 3 * H;
      scalar_t* d = direct.data_ptr<scalar_t>();
      const scalar_t* m = mask.defined() ? mask.data_ptr<scalar_t>() + t * B : nullptr;
      for_rows(B, 3 * H, [&](int64_t b) {
        const scalar_t* eb = e + b * H;
        const scalar_t* cb = c + b * H;
        scalar_t* db = d + b * H;
        scalar_t* dxb = dx + b * 3 * H;
        scalar_t* dgb = dg + b * 3 * H;
        if (m != nullptr && m[b] == scalar_t(0)) {  // held: the gradient passes straight back
          for (int64_t j = 0; j < H; ++j) db[j] += cb[j] + eb[j];
          for (int64_t j = 0; j < 3 * H; ++j) dxb[j] = dgb[j] = scalar_t(0);
          return;
        }
        const scalar_t* sb = s + b * 4 * H;
        const scalar_t* hb = hp + b * H;
        RNNKIT_SIMD
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t a = cb[j] + db[j] + eb[j];  // dL/dh_t
          const scalar_t r = sb[j], z = sb[H + j], n = sb[2 * H + j], ghn = sb[3 * H + j];
          const scalar_t dn = a * (scalar_t(1) - z) * (scalar_t(1) - n * n);  // d(pre n)
          const scalar_t dz = a * (hb[j] - n) * z * (scalar_t(1) - z);
          const scalar_t dr = dn * ghn * r * (scalar_t(1) - r);
          dxb[j] = dr;
          dxb[H + j] = dz;
          dxb[2 * H + j] = dn;
          dgb[j] = dr;
          dgb[H + j] = dz;
          dgb[2 * H + j] = dn * r;
          db[j] = a * z;
        }
      });
      through = step_product(dgh[t], w, packed, through);  // (B, 3H) @ (3H, H)
    }
  });
  auto [dw, dbias] = recurrent_grads(dgh, hs, h0, has_bias);
  return {dxp, through + direct, dw, dbias};
}

// --- Elman ---------------------------------------------------------------------------------
// h' = phi(xp + W_hh h + b_hh), phi = tanh or ReLU. Backward reads phi' from h' itself.

std::tuple<Tensor, Tensor> elman_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh,
                                         const c10::optional<Tensor>& b_hh, const c10::optional<Tensor>& valid,
                                         bool relu, const c10::optional<Tensor>& packed) {
  check_inputs(xp, h0, w_hh, 1);
  const int64_t T = xp.size(0), B = h0.size(0), H = h0.size(1);
  Tensor hs = at::empty({T, B, H}, h0.options());
  // Past a sequence's end hs holds the old state; the activations backward needs are kept apart.
  Tensor acts = valid.has_value() ? at::empty({T, B, H}, h0.options()) : hs;
  Tensor u = at::empty({B, H}, h0.options());  // W_hh h of one step
  const Tensor w_t = right_operand(w_hh);
  const Tensor bias = bias_or_zeros(b_hh, w_hh);
  const Tensor mask = valid.has_value() ? valid->to(h0.scalar_type()).contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "rnnkit_elman_forward", [&] {
    for (int64_t t = 0; t < T; ++t) {
      const Tensor h_prev = t == 0 ? h0 : hs[t - 1];
      const Tensor product = step_product(h_prev, w_t, packed, u);  // (B, H) @ (H, H)
      const scalar_t* x = xp.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* p = product.data_ptr<scalar_t>();
      const scalar_t* bh = bias.data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.data_ptr<scalar_t>();
      scalar_t* ob = hs.data_ptr<scalar_t>() + t * B * H;
      scalar_t* ab = acts.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* m = mask.defined() ? mask.data_ptr<scalar_t>() + t * B : nullptr;
      for_rows(B, H, [&](int64_t b) {
        const scalar_t* xb = x + b * H;
        const scalar_t* pb = p + b * H;
        scalar_t* a = ab + b * H;
        if (relu) {
          RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t v = xb[j] + pb[j] + bh[j];
            a[j] = v > scalar_t(0) ? v : scalar_t(0);
          }
        } else {
          RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) a[j] = std::tanh(xb[j] + pb[j] + bh[j]);
        }
        if (m != nullptr) {
          const scalar_t* hb = hp + b * H;
          scalar_t* o = ob + b * H;
          const bool running = m[b] != scalar_t(0);
          for (int64_t j = 0; j < H; ++j) o[j] = running ? a[j] : hb[j];
        }
      });
    }
  });
  return {hs, acts};
}

// As gru_backward: `through` = d(pre_t) @ W_hh, `direct` = the gradient of a held state.
std::tuple<Tensor, Tensor, Tensor, Tensor> elman_backward(const Tensor& grad, const Tensor& hs, const Tensor& acts,
                                                          const Tensor& h0, const Tensor& w_hh, bool has_bias,
                                                          const c10::optional<Tensor>& valid, bool relu,
                                                          const c10::optional<Tensor>& packed) {
  const int64_t T = hs.size(0), B = h0.size(0), H = h0.size(1);
  TORCH_CHECK(grad.is_contiguous() && acts.is_contiguous() && hs.is_contiguous(), "elman_backward: non-contiguous");
  Tensor dpre = at::empty({T, B, H}, h0.options());
  Tensor through = at::zeros({B, H}, h0.options());
  Tensor direct = at::zeros({B, H}, h0.options());
  const Tensor w = w_hh.contiguous();
  const Tensor mask = valid.has_value() ? valid->to(h0.scalar_type()).contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnnkit_elman_backward", [&] {
    for (int64_t t = T - 1; t >= 0; --t) {
      const scalar_t* e = grad.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* a = acts.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* c = through.data_ptr<scalar_t>();
      scalar_t* dp = dpre.data_ptr<scalar_t>() + t * B * H;
      scalar_t* d = direct.data_ptr<scalar_t>();
      const scalar_t* m = mask.defined() ? mask.data_ptr<scalar_t>() + t * B : nullptr;
      for_rows(B, H, [&](int64_t b) {
        const scalar_t* eb = e + b * H;
        const scalar_t* cb = c + b * H;
        const scalar_t* ab = a + b * H;
        scalar_t* dpb = dp + b * H;
        scalar_t* db = d + b * H;
        if (m != nullptr && m[b] == scalar_t(0)) {  // held: the gradient passes straight back
          for (int64_t j = 0; j < H; ++j) {
            db[j] += cb[j] + eb[j];
            dpb[j] = scalar_t(0);
          }
          return;
        }
        if (relu) {
          RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) dpb[j] = ab[j] > scalar_t(0) ? cb[j] + db[j] + eb[j] : scalar_t(0);
        } else {
          RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) dpb[j] = (cb[j] + db[j] + eb[j]) * (scalar_t(1) - ab[j] * ab[j]);
        }
        for (int64_t j = 0; j < H; ++j) db[j] = scalar_t(0);
      });
      through = step_product(dpre[t], w, packed, through);  // dh_{t-1} = d(pre) @ W_hh, (B, H) @ (H, H)
    }
  });
  auto [dw, dbias] = recurrent_grads(dpre, hs, h0, has_bias);
  return {dpre, through + direct, dw, dbias};
}

// --- layer-norm LSTM ---------------------------------------------------------------------------
// torch.nn's LSTM, gate order i, f, g, o, with layer norm (Ba et al. 2016, sec. 3.1 and 3.2).
// The twin is LSTMScan in rnnkit/scan/_lstm.py. Per step, with u = W_hh h_{t-1} (4H):
//   uhat_k = (u_k - mean(u_k)) / sqrt(var(u_k) + eps)  for each gate k over its H units (biased var)
//   a = xp_t + gain * uhat + b_hh;  i, f, o = s(a_i, a_f, a_o);  g = tanh(a_g)
//   c_t = f c_{t-1} + i g;  chat = (c_t - mean(c_t)) / sqrt(var(c_t) + eps)
//   h_t = o tanh(gain_c chat + bias_c)
// xp holds the input part with its own layer norm and b_ih (in autograd, outside). Saved per step
// for backward: the activations i, f, g, o and uhat, (T, B, 4H) each, and (T, B, 6) per row the
// four gates' 1/sqrt(var + eps), then the cell state's and its mean. Backward recomputes chat from
// c_t (kept anyway, as the states) and tanh(gain_c chat + bias_c): H fewer values per row to keep.
// Two (T, B, 4H) buffers rather than one (T, B, 8H): glibc's malloc maps every block over 32 MiB
// fresh, so each call page-faults it in (30 ms a forward sweep for 52 MB at T200 B32 H256 here),
// while smaller blocks can come back from its heap. With the split, `rnnkit bench` config 10's
// training row went from 0.75-0.77x to 0.86-1.01x torch.nn (two runs each); whether a block is
// reused still depends on the allocator's state, not on this code.

constexpr double kLayerNormEps = 1e-5;  // rnnkit.cells.LAYER_NORM_EPS
constexpr int64_t kLnStats = 6;         // saved statistics per row
// Backward keeps d(W_hh h) for this many steps, not T: the weight gradient is one matmul per
// chunk, (4H, n*B) @ (n*B, H), and the buffer (16, B, 4H) instead of (T, B, 4H).
constexpr int64_t kLnChunk = 16;

// The mean and 1/sqrt(var + eps) (biased variance) of x[0, n) in scalar_t: two passes, the second
// over the deviations from the mean, so nothing cancels (as E[x^2] - E[x]^2 would in float32).
template <typename scalar_t>
inline std::pair<scalar_t, scalar_t> row_moments(const scalar_t* x, int64_t n) {
  scalar_t sum1 = 0, sum2 = 0;
  RNNKIT_SIMD_SUMS
  for (int64_t j = 0; j < n; ++j) sum1 += x[j];
  const scalar_t mean = sum1 / scalar_t(n);
  RNNKIT_SIMD_SUMS
  for (int64_t j = 0; j < n; ++j) sum2 += (x[j] - mean) * (x[j] - mean);
  return {mean, scalar_t(1) / std::sqrt(sum2 / scalar_t(n) + scalar_t(kLayerNormEps))};
}

// w_low: W_hh (4H, H) in autocast's dtype, where the products run autocast's way; a float32 W_hh
// and no packed weight then (oneDNN's packed path is float32 only).
inline void check_low(const Tensor& w_hh, const c10::optional<Tensor>& packed, const c10::optional<Tensor>& w_low) {
  if (!w_low.has_value()) return;
  TORCH_CHECK(!packed.has_value() && w_hh.scalar_type() == at::kFloat && w_low->sizes() == w_hh.sizes() &&
                  (w_low->scalar_type() == at::kBFloat16 || w_low->scalar_type() == at::kHalf),
              "w_low must be a bf16 or fp16 copy of a float32 W_hh, without a packed weight");
}

inline void check_lstm_ln(const Tensor& h0, const Tensor& c0, const Tensor& gain, const Tensor& gain_c,
                          const Tensor& bias_c) {
  const int64_t H = h0.size(1);
  TORCH_CHECK(c0.sizes() == h0.sizes() && c0.is_contiguous(), "c0 must be a contiguous (B, H) tensor like h0");
  TORCH_CHECK(gain.numel() == 4 * H && gain_c.numel() == H && bias_c.numel() == H,
              "the layer-norm gains must be (4H), (H) and (H)");
  for (const Tensor* t : {&c0, &gain, &gain_c, &bias_c})
    TORCH_CHECK(t->scalar_type() == h0.scalar_type() && t->is_contiguous(), "c0 and the gains: dtype or layout differ");
}

// Returns hs, cs (T, B, H) and, where `save`, what backward reads (else undefined). Inference
// writes those values to one step's scratch instead: the same code, so the same numbers.
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> lstm_ln_forward(
    const Tensor& xp, const Tensor& h0, const Tensor& c0, const Tensor& w_hh, const c10::optional<Tensor>& b_hh,
    const Tensor& gain, const Tensor& gain_c, const Tensor& bias_c, const c10::optional<Tensor>& valid, bool save,
    const c10::optional<Tensor>& packed, const c10::optional<Tensor>& w_low) {
  check_inputs(xp, h0, w_hh, 4);
  check_low(w_hh, packed, w_low);
  check_lstm_ln(h0, c0, gain, gain_c, bias_c);
  const int64_t T = xp.size(0), B = h0.size(0), H = h0.size(1);
  Tensor hs = at::empty({T, B, H}, h0.options());
  Tensor cs = at::empty({T, B, H}, h0.options());
  Tensor acts = at::empty({save ? T : 1, B, 4 * H}, h0.options());
  Tensor normed = at::empty({save ? T : 1, B, 4 * H}, h0.options());
  Tensor stats = at::empty({save ? T : 1, B, kLnStats}, h0.options());
  Tensor u = at::empty({B, 4 * H}, h0.options());  // W_hh h of one step
  const Tensor w_t = right_operand(w_low.has_value() ? *w_low : w_hh);
  const Tensor bias = bias_or_zeros(b_hh, w_hh);
  const Tensor mask = valid.has_value() ? valid->to(h0.scalar_type()).contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "rnnkit_lstm_ln_forward", [&] {
    const scalar_t* gn = gain.data_ptr<scalar_t>();
    const scalar_t* gc = gain_c.data_ptr<scalar_t>();
    const scalar_t* bc = bias_c.data_ptr<scalar_t>();
    const scalar_t* bh = bias.data_ptr<scalar_t>();
    for (int64_t t = 0; t < T; ++t) {
      const Tensor h_prev = t == 0 ? h0 : hs[t - 1];
      const Tensor product = w_low.has_value() ? low_product(h_prev, w_t, u)  // (B, H) @ (H, 4H)
                                               : step_product(h_prev, w_t, packed, u);
      const scalar_t* x = xp.data_ptr<scalar_t>() + t * B * 4 * H;
      const scalar_t* p = product.data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.data_ptr<scalar_t>();
      const scalar_t* cp = t == 0 ? c0.data_ptr<scalar_t>() : cs.data_ptr<scalar_t>() + (t - 1) * B * H;
      scalar_t* hn = hs.data_ptr<scalar_t>() + t * B * H;
      scalar_t* cn = cs.data_ptr<scalar_t>() + t * B * H;
      scalar_t* s = acts.data_ptr<scalar_t>() + (save ? t : 0) * B * 4 * H;
      scalar_t* n = normed.data_ptr<scalar_t>() + (save ? t : 0) * B * 4 * H;
      scalar_t* r = stats.data_ptr<scalar_t>() + (save ? t : 0) * B * kLnStats;
      const scalar_t* m = mask.defined() ? mask.data_ptr<scalar_t>() + t * B : nullptr;
      for_rows(B, 8 * H, [&](int64_t b) {
        const scalar_t* hb = hp + b * H;
        const scalar_t* cb = cp + b * H;
        scalar_t* ho = hn + b * H;
        scalar_t* co = cn + b * H;
        if (m != nullptr && m[b] == scalar_t(0)) {  // past the end: hold h and c (nothing saved is read)
          for (int64_t j = 0; j < H; ++j) {
            ho[j] = hb[j];
            co[j] = cb[j];
          }
          return;
        }
        const scalar_t* xb = x + b * 4 * H;
        const scalar_t* ub = p + b * 4 * H;
        scalar_t* act = s + b * 4 * H;  // i, f, g, o
        scalar_t* uhat = n + b * 4 * H;
        scalar_t* rb = r + b * kLnStats;
        scalar_t mean[4], rstd[4];  // each gate's W_hh h normalised over its H units
        for (int64_t k = 0; k < 4; ++k) {
          std::tie(mean[k], rstd[k]) = row_moments(ub + k * H, H);
          rb[k] = rstd[k];
        }
        RNNKIT_SIMD
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t zi = (ub[j] - mean[0]) * rstd[0], zf = (ub[H + j] - mean[1]) * rstd[1];
          const scalar_t zg = (ub[2 * H + j] - mean[2]) * rstd[2], zo = (ub[3 * H + j] - mean[3]) * rstd[3];
          const scalar_t i = sigmoid(xb[j] + gn[j] * zi + bh[j]);
          const scalar_t f = sigmoid(xb[H + j] + gn[H + j] * zf + bh[H + j]);
          const scalar_t g = std::tanh(xb[2 * H + j] + gn[2 * H + j] * zg + bh[2 * H + j]);
          const scalar_t o = sigmoid(xb[3 * H + j] + gn[3 * H + j] * zo + bh[3 * H + j]);
          act[j] = i;
          act[H + j] = f;
          act[2 * H + j] = g;
          act[3 * H + j] = o;
          uhat[j] = zi;
          uhat[H + j] = zf;
          uhat[2 * H + j] = zg;
          uhat[3 * H + j] = zo;
          co[j] = f * cb[j] + i * g;
        }
        const auto [mean_c, rstd_c] = row_moments(co, H);
        rb[4] = rstd_c;
        rb[5] = mean_c;
        RNNKIT_SIMD
        for (int64_t j = 0; j < H; ++j) ho[j] = act[3 * H + j] * std::tanh(gc[j] * ((co[j] - mean_c) * rstd_c) + bc[j]);
      });
    }
  });
  return {hs, cs, save ? acts : Tensor(), save ? normed : Tensor(), save ? stats : Tensor()};
}

// grad_h, grad_c (T, B, H): the gradients reaching each step's h and c from outside the
// recurrence. Returns d(xp) (= d(a), the gates' pre-activations), dh0, dc0, dW_hh, db_hh (undefined
// without bias), d(gain), d(gain_c), d(bias_c).
//
// As gru_backward, the gradient reaching h_{t-1} is `through` (d(u_t) @ W_hh, the matmul) plus
// `direct` (the whole gradient of a held state); c's, `carry`, is f_t dL/dc_t. The parameters'
// sums are kept per batch row (each row is one thread's, so no two threads add to one place) and
// summed over the rows at the end. Layer norm's backward (Ba et al. 2016), for y = gamma z + beta,
// z = (x - mean) rstd over n units: dx = rstd (dz - mean(dz) - z mean(dz z)), dz = gamma dy.
// Per row three passes over the H units: d(a_o) and d(chat); d(c_t) and d(a_i, a_f, a_g); d(u).
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> lstm_ln_backward(
    const Tensor& grad_h, const Tensor& grad_c, const Tensor& hs, const Tensor& cs, const Tensor& h0,
    const Tensor& c0, const Tensor& acts, const Tensor& normed, const Tensor& stats, const Tensor& w_hh,
    const Tensor& gain,
    const Tensor& gain_c, const Tensor& bias_c, bool has_bias, const c10::optional<Tensor>& valid,
    const c10::optional<Tensor>& packed, const c10::optional<Tensor>& w_low) {
  const int64_t T = hs.size(0), B = h0.size(0), H = h0.size(1);
  check_low(w_hh, packed, w_low);
  TORCH_CHECK(grad_h.is_contiguous() && grad_c.is_contiguous() && hs.is_contiguous() && cs.is_contiguous() &&
                  acts.is_contiguous() && normed.is_contiguous() && stats.is_contiguous() && h0.is_contiguous(),
              "lstm_ln_backward: non-contiguous");
  check_lstm_ln(h0, c0, gain, gain_c, bias_c);
  const int64_t chunk = std::min(kLnChunk, T);
  Tensor dxp = at::empty({T, B, 4 * H}, h0.options());
  // d(W_hh h) of the chunk's steps. Under autocast both products read it rounded to w_low's dtype,
  // so one step's float32 d(u) is kept, and the chunk's in that dtype (the rounding both use)
  const bool low = w_low.has_value();
  Tensor du = at::empty({low ? 1 : chunk, B, 4 * H}, h0.options());
  Tensor du_low = low ? at::empty({chunk, B, 4 * H}, h0.options().dtype(w_low->scalar_type())) : Tensor();
  Tensor dw = at::zeros({4 * H, H}, h0.options());
  Tensor through = at::zeros({B, H}, h0.options());
  Tensor direct = at::zeros({B, H}, h0.options());
  Tensor carry = at::zeros({B, H}, h0.options());
  Tensor sums = at::zeros({B, 10 * H}, h0.options());  // per row: d(gain) | d(b_hh) | d(gain_c) | d(bias_c)
  const Tensor w = w_low.has_value() ? w_low->contiguous() : w_hh.contiguous();
  const Tensor mask = valid.has_value() ? valid->to(h0.scalar_type()).contiguous() : Tensor();
  // dW_hh += sum over the chunk's steps t of d(u_t)^T h_{t-1}: (4H, n*B) @ (n*B, H); under autocast
  // each product on operands rounded to its dtype, its rounded result added in float32 (_Products'
  // addmm_, as the twin's _weight_grad)
  auto add_product = [&](const Tensor& a, const Tensor& b) {
    if (low) {  // the operand's copy freed before add_ converts the product to float32
      const Tensor product = at::mm(a, b.to(w_low->scalar_type()));  // a: du_low's
      dw.add_(product);
    } else {
      dw.addmm_(a, b);
    }
  };
  auto add_weight_grad = [&](int64_t start, int64_t n) {
    const Tensor d = (low ? du_low : du).narrow(0, 0, n);
    if (start == 0) {  // h_{-1} is h0, apart from hs
      add_product(d[0].t(), h0);
      if (n > 1) {
        add_product(d.narrow(0, 1, n - 1).reshape({(n - 1) * B, 4 * H}).t(),
                    hs.narrow(0, 0, n - 1).reshape({(n - 1) * B, H}));
      }
    } else {
      add_product(d.reshape({n * B, 4 * H}).t(), hs.narrow(0, start - 1, n).reshape({n * B, H}));
    }
  };
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnnkit_lstm_ln_backward", [&] {
    const scalar_t* gn = gain.data_ptr<scalar_t>();
    const scalar_t* gc = gain_c.data_ptr<scalar_t>();
    const scalar_t* bc = bias_c.data_ptr<scalar_t>();
    const scalar_t inv_h = scalar_t(1) / scalar_t(H);
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t start = t - t % chunk;  // the first step of t's chunk
      const scalar_t* eh = grad_h.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* ec = grad_c.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* s = acts.data_ptr<scalar_t>() + t * B * 4 * H;
      const scalar_t* n = normed.data_ptr<scalar_t>() + t * B * 4 * H;
      const scalar_t* r = stats.data_ptr<scalar_t>() + t * B * kLnStats;
      const scalar_t* cn = cs.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* cp = t == 0 ? c0.data_ptr<scalar_t>() : cn - B * H;
      const scalar_t* th = through.data_ptr<scalar_t>();
      scalar_t* dr = direct.data_ptr<scalar_t>();
      scalar_t* ca = carry.data_ptr<scalar_t>();
      scalar_t* dx = dxp.data_ptr<scalar_t>() + t * B * 4 * H;
      scalar_t* dd = du.data_ptr<scalar_t>() + (low ? 0 : t - start) * B * 4 * H;
      scalar_t* acc = sums.data_ptr<scalar_t>();
      const scalar_t* m = mask.defined() ? mask.data_ptr<scalar_t>() + t * B : nullptr;
      for_rows(B, 8 * H, [&](int64_t b) {
        const scalar_t* ehb = eh + b * H;
        const scalar_t* ecb = ec + b * H;
        const scalar_t* thb = th + b * H;
        scalar_t* drb = dr + b * H;
        scalar_t* cab = ca + b * H;
        scalar_t* da = dx + b * 4 * H;  // d(a): i, f, g, o
        scalar_t* ddb = dd + b * 4 * H;
        if (m != nullptr && m[b] == scalar_t(0)) {  // held: both gradients pass straight back
          for (int64_t j = 0; j < H; ++j) {
            drb[j] += thb[j] + ehb[j];
            cab[j] += ecb[j];
          }
          for (int64_t j = 0; j < 4 * H; ++j) da[j] = ddb[j] = scalar_t(0);
          return;
        }
        const scalar_t* act = s + b * 4 * H;
        const scalar_t* uhat = n + b * 4 * H;
        const scalar_t* rb = r + b * kLnStats;
        const scalar_t* cnb = cn + b * H;
        const scalar_t* cpb = cp + b * H;
        scalar_t* acc_gain = acc + b * 10 * H;
        scalar_t* acc_bias = acc_gain + 4 * H;
        scalar_t* acc_gain_c = acc_gain + 8 * H;
        scalar_t* acc_bias_c = acc_gain + 9 * H;
        const scalar_t rstd_c = rb[4], mean_c = rb[5];
        // Each gate's layer-norm backward needs the row sums of dz = gain d(a) and of dz uhat,
        // gathered where d(a) is made: sum1/sum2 for the cell state's norm, the rest per gate.
        scalar_t sum1 = 0, sum2 = 0, sum_o1 = 0, sum_o2 = 0;
        // h_t = o tanh(y), y = gain_c chat + bias_c: d(a_o), and d(chat) parked in d(a_i)'s place
        _Pragma("omp simd reduction(+ : sum1, sum2, sum_o1, sum_o2)")
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t dh = thb[j] + drb[j] + ehb[j];  // dL/dh_t
          const scalar_t o = act[3 * H + j], z = (cnb[j] - mean_c) * rstd_c;
          const scalar_t tc = std::tanh(gc[j] * z + bc[j]);
          const scalar_t dao = dh * tc * o * (scalar_t(1) - o);
          const scalar_t dy = dh * o * (scalar_t(1) - tc * tc);
          da[3 * H + j] = dao;
          acc_gain_c[j] += dy * z;
          acc_bias_c[j] += dy;
          const scalar_t dz = dy * gc[j];
          da[j] = dz;
          sum1 += dz;
          sum2 += dz * z;
          const scalar_t uo = uhat[3 * H + j], dzo = dao * gn[3 * H + j];
          acc_gain[3 * H + j] += dao * uo;
          acc_bias[3 * H + j] += dao;
          sum_o1 += dzo;
          sum_o2 += dzo * uo;
        }
        const scalar_t mean_dz = sum1 * inv_h, mean_dzz = sum2 * inv_h;
        scalar_t sum_i1 = 0, sum_i2 = 0, sum_f1 = 0, sum_f2 = 0, sum_g1 = 0, sum_g2 = 0;
        _Pragma("omp simd reduction(+ : sum_i1, sum_i2, sum_f1, sum_f2, sum_g1, sum_g2)")
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t z = (cnb[j] - mean_c) * rstd_c;
          const scalar_t dc = cab[j] + ecb[j] + rstd_c * (da[j] - mean_dz - z * mean_dzz);  // dL/dc_t
          const scalar_t i = act[j], f = act[H + j], g = act[2 * H + j];
          const scalar_t dai = dc * g * i * (scalar_t(1) - i);
          const scalar_t daf = dc * cpb[j] * f * (scalar_t(1) - f);
          const scalar_t dag = dc * i * (scalar_t(1) - g * g);
          da[j] = dai;
          da[H + j] = daf;
          da[2 * H + j] = dag;
          cab[j] = dc * f;
          drb[j] = scalar_t(0);
          const scalar_t ui = uhat[j], uf = uhat[H + j], ug = uhat[2 * H + j];
          acc_gain[j] += dai * ui;
          acc_gain[H + j] += daf * uf;
          acc_gain[2 * H + j] += dag * ug;
          acc_bias[j] += dai;
          acc_bias[H + j] += daf;
          acc_bias[2 * H + j] += dag;
          const scalar_t dzi = dai * gn[j], dzf = daf * gn[H + j], dzg = dag * gn[2 * H + j];
          sum_i1 += dzi;
          sum_i2 += dzi * ui;
          sum_f1 += dzf;
          sum_f2 += dzf * uf;
          sum_g1 += dzg;
          sum_g2 += dzg * ug;
        }
        // a = xp + gain uhat + b_hh: each gate's layer norm back to d(u)
        const scalar_t m1[4] = {sum_i1 * inv_h, sum_f1 * inv_h, sum_g1 * inv_h, sum_o1 * inv_h};
        const scalar_t m2[4] = {sum_i2 * inv_h, sum_f2 * inv_h, sum_g2 * inv_h, sum_o2 * inv_h};
        for (int64_t k = 0; k < 4; ++k) {
          const scalar_t* dak = da + k * H;
          const scalar_t* zk = uhat + k * H;
          const scalar_t* gk = gn + k * H;
          const scalar_t mk1 = m1[k], mk2 = m2[k], rstd = rb[k];
          scalar_t* ddk = ddb + k * H;
          RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) ddk[j] = rstd * (dak[j] * gk[j] - mk1 - zk[j] * mk2);
        }
      });
      if (low) {  // dh_{t-1}: (B, 4H) @ (4H, H), d(u) rounded once for this and dW_hh
        du_low[t - start].copy_(du[0]);
        through.copy_(at::mm(du_low[t - start], w));
      } else {
        through = step_product(du[t - start], w, packed, through);
      }
      if (t == start) add_weight_grad(start, std::min(chunk, T - start));
    }
  });
  const Tensor total = sums.sum(0);  // (10H)
  return {dxp,
          through + direct,
          carry,
          dw,
          has_bias ? total.narrow(0, 4 * H, 4 * H).clone() : Tensor(),
          total.narrow(0, 0, 4 * H).clone(),
          total.narrow(0, 8 * H, H).clone(),
          total.narrow(0, 9 * H, H).clone()};
}

// --- the linear recurrence of minGRU/minLSTM -----------------------------------------------
// h_t = a_t h_{t-1} + b_t over (T, N); backward g_t = dL/dh_t + a_{t+1} g_{t+1}.

Tensor linear_scan_forward(const Tensor& a, const Tensor& b, const Tensor& h0) {
  TORCH_CHECK(a.is_contiguous() && b.is_contiguous() && h0.is_contiguous(), "linear_scan: non-contiguous");
  const int64_t T = a.size(0), N = h0.numel();
  Tensor hs = at::empty_like(b);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnkit_linear_scan_forward", [&] {
    const scalar_t* pa = a.data_ptr<scalar_t>();
    const scalar_t* pb = b.data_ptr<scalar_t>();
    const scalar_t* p0 = h0.data_ptr<scalar_t>();
    scalar_t* ph = hs.data_ptr<scalar_t>();
    at::parallel_for(0, N, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t t = 0; t < T; ++t) {
        const scalar_t* prev = t == 0 ? p0 : ph + (t - 1) * N;
        const scalar_t* at_ = pa + t * N;
        const scalar_t* bt = pb + t * N;
        scalar_t* out = ph + t * N;
RNNKIT_SIMD
        for (int64_t i = begin; i < end; ++i) out[i] = at_[i] * prev[i] + bt[i];
      }
    });
  });
  return hs;
}

// Returns dL/da, dL/db (= g), dL/dh0.
std::tuple<Tensor, Tensor, Tensor> linear_scan_backward(const Tensor& grad, const Tensor& a, const Tensor& hs,
                                                        const Tensor& h0) {
  const int64_t T = a.size(0), N = h0.numel();
  const Tensor g_in = grad.contiguous();
  Tensor g = at::empty_like(hs);
  Tensor da = at::empty_like(hs);
  Tensor dh0 = at::empty_like(h0);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnkit_linear_scan_backward", [&] {
    const scalar_t* pa = a.data_ptr<scalar_t>();
    const scalar_t* pe = g_in.data_ptr<scalar_t>();
    const scalar_t* ph = hs.data_ptr<scalar_t>();
    const scalar_t* p0 = h0.data_ptr<scalar_t>();
    scalar_t* pg = g.data_ptr<scalar_t>();
    scalar_t* pda = da.data_ptr<scalar_t>();
    scalar_t* pd0 = dh0.data_ptr<scalar_t>();
    at::parallel_for(0, N, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t t = T - 1; t >= 0; --t) {
        const scalar_t* et = pe + t * N;
        const scalar_t* prev = t == 0 ? p0 : ph + (t - 1) * N;
        scalar_t* gt = pg + t * N;
        scalar_t* dat = pda + t * N;
        if (t == T - 1) {
RNNKIT_SIMD
          for (int64_t i = begin; i < end; ++i) gt[i] = et[i];
        } else {
          const scalar_t* an = pa + (t + 1) * N;
          const scalar_t* gn = pg + (t + 1) * N;
RNNKIT_SIMD
          for (int64_t i = begin; i < end; ++i) gt[i] = et[i] + an[i] * gn[i];
        }
RNNKIT_SIMD
        for (int64_t i = begin; i < end; ++i) dat[i] = gt[i] * prev[i];
      }
RNNKIT_SIMD
      for (int64_t i = begin; i < end; ++i) pd0[i] = pg[i] * pa[i];
    });
  });
  return {da, g, dh0};
}

// --- minGRU, gates and recurrence in one pass ------------------------------------------------
// Feng et al. 2024, sec. 3.1 and appendix B.3: z = s(k), h~ = g(p) (g(p) = p + 0.5 for p >= 0, else
// s(p)), h_t = (1 - z) h_{t-1} + z h~. xp (T, B, 2H) holds k then p. Nothing but the states is
// saved: backward recomputes z and h~ from xp, which autograd keeps anyway.

template <typename scalar_t>
inline scalar_t candidate(scalar_t p) {
  return p >= scalar_t(0) ? p + scalar_t(0.5) : sigmoid(p);
}

Tensor mingru_forward(const Tensor& xp, const Tensor& h0, const c10::optional<Tensor>& valid) {
  TORCH_CHECK(xp.dim() == 3 && xp.is_contiguous() && h0.is_contiguous(), "mingru_forward: contiguous (T, B, 2H)");
  const int64_t T = xp.size(0), B = h0.size(0), H = h0.size(1);
  TORCH_CHECK(xp.size(1) == B && xp.size(2) == 2 * H, "mingru_forward: xp and h0 do not fit");
  Tensor hs = at::empty({T, B, H}, h0.options());
  const Tensor mask = valid.has_value() ? valid->to(h0.scalar_type()).contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "rnnkit_mingru_forward", [&] {
    const scalar_t* px = xp.data_ptr<scalar_t>();
    const scalar_t* p0 = h0.data_ptr<scalar_t>();
    scalar_t* ph = hs.data_ptr<scalar_t>();
    const scalar_t* pm = mask.defined() ? mask.data_ptr<scalar_t>() : nullptr;
    for_rows(B, T * H, [&](int64_t b) {
      for (int64_t t = 0; t < T; ++t) {
        const scalar_t* hp = t == 0 ? p0 + b * H : ph + ((t - 1) * B + b) * H;
        scalar_t* out = ph + (t * B + b) * H;
        if (pm != nullptr && pm[t * B + b] == scalar_t(0)) {
          for (int64_t j = 0; j < H; ++j) out[j] = hp[j];
          continue;
        }
        const scalar_t* k = px + (t * B + b) * 2 * H;
        const scalar_t* p = k + H;
        RNNKIT_SIMD
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t z = sigmoid(k[j]);
          out[j] = hp[j] + z * (candidate(p[j]) - hp[j]);
        }
      }
    });
  });
  return hs;
}

// grad (T, B, H) as in gru_backward. Returns d(xp) (T, B, 2H) and dh0.
std::tuple<Tensor, Tensor> mingru_backward(const Tensor& grad, const Tensor& xp, const Tensor& hs, const Tensor& h0,
                                           const c10::optional<Tensor>& valid) {
  const int64_t T = xp.size(0), B = h0.size(0), H = h0.size(1);
  const Tensor e = grad.contiguous();
  Tensor dxp = at::empty({T, B, 2 * H}, h0.options());
  Tensor dh0 = at::empty({B, H}, h0.options());
  const Tensor mask = valid.has_value() ? valid->to(h0.scalar_type()).contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "rnnkit_mingru_backward", [&] {
    const scalar_t* px = xp.data_ptr<scalar_t>();
    const scalar_t* pe = e.data_ptr<scalar_t>();
    const scalar_t* ph = hs.data_ptr<scalar_t>();
    const scalar_t* p0 = h0.data_ptr<scalar_t>();
    scalar_t* pd = dxp.data_ptr<scalar_t>();
    scalar_t* pd0 = dh0.data_ptr<scalar_t>();
    const scalar_t* pm = mask.defined() ? mask.data_ptr<scalar_t>() : nullptr;
    for_rows(B, T * H, [&](int64_t b) {
      scalar_t* carry = pd0 + b * H;  // dL/dh_t through the recurrence; ends as dL/dh0
      for (int64_t j = 0; j < H; ++j) carry[j] = scalar_t(0);
      for (int64_t t = T - 1; t >= 0; --t) {
        const scalar_t* eb = pe + (t * B + b) * H;
        scalar_t* dk = pd + (t * B + b) * 2 * H;
        scalar_t* dp = dk + H;
        if (pm != nullptr && pm[t * B + b] == scalar_t(0)) {  // held: a = 1, b = 0
          for (int64_t j = 0; j < H; ++j) {
            carry[j] += eb[j];
            dk[j] = dp[j] = scalar_t(0);
          }
          continue;
        }
        const scalar_t* hp = t == 0 ? p0 + b * H : ph + ((t - 1) * B + b) * H;
        const scalar_t* k = px + (t * B + b) * 2 * H;
        const scalar_t* p = k + H;
        RNNKIT_SIMD
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t g = carry[j] + eb[j];  // dL/dh_t
          const scalar_t z = sigmoid(k[j]);
          const scalar_t s = sigmoid(p[j]);
          const bool linear = p[j] >= scalar_t(0);
          const scalar_t h_tilde = linear ? p[j] + scalar_t(0.5) : s;
          dk[j] = g * (h_tilde - hp[j]) * z * (scalar_t(1) - z);
          dp[j] = g * z * (linear ? scalar_t(1) : s * (scalar_t(1) - s));
          carry[j] = g * (scalar_t(1) - z);
        }
      }
    });
  });
  return {dxp, dh0};
}

// --- one streaming step of a whole stack ---------------------------------------------------
// layer.step of a plain Elman RNN, GRU or LSTM (proj_size too), every layer of the step in ONE
// call: the per-layer Python and the dozen ATen ops of torch.nn's cell kernel (two products, then
// each gate's sigmoid or tanh and the adds and multiplies, one op each) become two products and
// one pass per layer. Each layer writes its new state straight into its slice of the stacked
// (L, B, size) result, which the next layer reads as its input; the caller's state is only read.
// An ATen call costs about a microsecond here even for a view (a select goes through the
// dispatcher and its autograd view tracking), so the layers are addressed by pointer and the
// call allocates three tensors: h_n, c_n and one scratch.
//
// At a streaming step's few rows a product is a matrix-vector one, bound by reading the weight
// once: MKL's mm/mv read a 1024 x 512 float32 weight in 36-41 us on this project's machine, the
// plain loop below (4 rows at a time, so 4 independent sums, vectorised by -O3 -march=native) in
// 28 us; a 2048 x 1024 one in 116 against 89 us. The loop reads each block of 4 rows once for all
// the batch's rows; a 2-layer LSTM step took 141-147 against 254-269 us at H256 B6 and 351-400
// against 456-488 us at B16 through it rather than MKL's mm (one thread, load average 6). Above
// kDotBatch rows of the batch MKL's matmul takes over. The twin is the cells' own step, layer after layer (RecurrentLayer.step under
// rnnkit.scan.disabled("compiled")); rnnkit/scan/_step.py says when this runs.
//
// weights: per layer torch.nn's order, w_ih (G*H, I_l), w_hh (G*H, R), b_ih, b_hh (G*H) where
// has_bias, w_hr (P, H) where has_proj (the LSTM's projection: R = P; else R = H).

constexpr int64_t kDotBatch = 16;  // rows of the batch up to which the products are rows_dot

// y[b, r] = sum_k w[r, k] x[b, k] for r < N, b < B: row-major w (N, K), x (B, K), y (B, ldy).
// Four rows of w at a time: their sums are independent, so the adds do not wait on each other,
// and the four rows stay in L1 while every row of the batch reads them.
template <typename T>
void rows_dot(const T* w, int64_t N, int64_t K, const T* x, int64_t B, T* y, int64_t ldy) {
  const int64_t blocks = (N + 3) / 4;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, 4 * K * B));  // small: one thread
  at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t r = 4 * blk;
      if (r + 4 > N) {  // the last, short block: a row at a time
        for (int64_t q = r; q < N; ++q) {
          for (int64_t b = 0; b < B; ++b) {
            const T* wq = w + q * K;
            const T* xb = x + b * K;
            T sum1 = 0, sum2 = 0;
            RNNKIT_SIMD_SUMS
            for (int64_t k = 0; k < K; ++k) sum1 += wq[k] * xb[k];
            y[b * ldy + q] = sum1 + sum2;
          }
        }
        continue;
      }
      const T* w0 = w + r * K;
      const T* w1 = w0 + K;
      const T* w2 = w1 + K;
      const T* w3 = w2 + K;
      for (int64_t b = 0; b < B; ++b) {
        const T* xb = x + b * K;
        T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        _Pragma("omp simd reduction(+ : s0, s1, s2, s3)")
        for (int64_t k = 0; k < K; ++k) {
          const T v = xb[k];
          s0 += w0[k] * v;
          s1 += w1[k] * v;
          s2 += w2[k] * v;
          s3 += w3[k] * v;
        }
        T* yb = y + b * ldy + r;
        yb[0] = s0, yb[1] = s1, yb[2] = s2, yb[3] = s3;
      }
    }
  });
}

// out (B, N) = x (B, K) @ w^T for a contiguous w (N, K), x and out contiguous: rows_dot at a few
// rows, MKL's matmul beyond (on tensors over the same memory, made only then).
template <typename T>
void product(const T* x, int64_t B, int64_t K, const Tensor& w, T* out) {
  const int64_t N = w.size(0);
  if (B <= kDotBatch) {
    rows_dot<T>(w.data_ptr<T>(), N, K, x, B, out, N);
    return;
  }
  Tensor xt = at::from_blob(const_cast<T*>(x), {B, K}, w.options());
  Tensor ot = at::from_blob(out, {B, N}, w.options());
  at::mm_out(ot, xt, w.t());
}

// Returns {output (B, R), h_n (L, B, R)} and, for the LSTM, c_n (L, B, H); the output is h_n's
// last layer (a view), as the cells' step returns the last layer's new h as the output.
std::vector<Tensor> stack_step(const Tensor& input, at::TensorList state, at::TensorList weights,
                               c10::string_view mode, bool has_bias, bool has_proj) {
  const bool lstm = mode == "lstm", gru = mode == "gru", relu = mode == "rnn_relu";
  TORCH_CHECK(lstm || gru || relu || mode == "rnn_tanh", "stack_step: mode must be lstm, gru, rnn_tanh or rnn_relu");
  TORCH_CHECK(!has_proj || lstm, "stack_step: only the LSTM has a projection");
  const int64_t G = lstm ? 4 : gru ? 3 : 1;
  const int64_t per_layer = 2 + (has_bias ? 2 : 0) + (has_proj ? 1 : 0);
  TORCH_CHECK(!weights.empty() && weights.size() % per_layer == 0, "stack_step: weights do not fit the layers");
  TORCH_CHECK(state.size() == (lstm ? 2u : 1u), "stack_step: wrong number of state components");
  const int64_t L = weights.size() / per_layer;
  const Tensor x = input.contiguous();
  const Tensor h0 = state[0].contiguous();
  const Tensor c0 = lstm ? state[1].contiguous() : Tensor();
  TORCH_CHECK(x.dim() == 2 && h0.dim() == 3 && h0.size(0) == L && h0.size(1) == x.size(0),
              "stack_step: x (B, I) and h (L, B, R) do not fit");
  TORCH_CHECK(h0.scalar_type() == x.scalar_type() && (!lstm || c0.scalar_type() == x.scalar_type()),
              "stack_step: dtypes differ");
  const int64_t B = x.size(0), R = h0.size(2), H = weights[1].size(0) / G;
  TORCH_CHECK(has_proj || R == H, "stack_step: h must be (L, B, H) without a projection");
  TORCH_CHECK(!lstm || (c0.dim() == 3 && c0.size(0) == L && c0.size(1) == B && c0.size(2) == H),
              "stack_step: c must be (L, B, H)");
  Tensor h_n = at::empty({L, B, R}, x.options());
  Tensor c_n = lstm ? at::empty({L, B, H}, x.options()) : Tensor();
  // one layer's W_ih x and W_hh h (B, G*H) each, o tanh(c) before W_hr (B, H), zero biases (G*H)
  Tensor scratch = at::empty({2 * B * G * H + (has_proj ? B * H : 0) + (has_bias ? 0 : G * H)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnkit_stack_step", [&] {
    scalar_t* gi = scratch.data_ptr<scalar_t>();
    scalar_t* gh = gi + B * G * H;
    scalar_t* full = gh + B * G * H;
    scalar_t* zeros = full + (has_proj ? B * H : 0);
    if (!has_bias) std::fill(zeros, zeros + G * H, scalar_t(0));
    const scalar_t* layer_input = x.data_ptr<scalar_t>();
    int64_t I = x.size(1);
    for (int64_t l = 0; l < L; ++l) {
      const Tensor* w = weights.data() + l * per_layer;
      const Tensor w_ih = w[0].contiguous(), w_hh = w[1].contiguous();
      TORCH_CHECK(w_ih.scalar_type() == x.scalar_type() && w_hh.scalar_type() == x.scalar_type(),
                  "stack_step: dtypes differ");
      TORCH_CHECK(w_ih.dim() == 2 && w_ih.size(0) == G * H && w_ih.size(1) == I && w_hh.dim() == 2 &&
                      w_hh.size(0) == G * H && w_hh.size(1) == R,
                  "stack_step: the weights of layer ", l, " do not fit");
      const Tensor b_ih = has_bias ? w[2].contiguous() : Tensor(), b_hh = has_bias ? w[3].contiguous() : Tensor();
      TORCH_CHECK(!has_bias || (b_ih.numel() == G * H && b_hh.numel() == G * H &&
                                b_ih.scalar_type() == x.scalar_type() && b_hh.scalar_type() == x.scalar_type()),
                  "stack_step: the biases of layer ", l, " do not fit");
      const scalar_t* bi = has_bias ? b_ih.data_ptr<scalar_t>() : zeros;
      const scalar_t* bh = has_bias ? b_hh.data_ptr<scalar_t>() : zeros;
      const scalar_t* hp = h0.data_ptr<scalar_t>() + l * B * R;
      scalar_t* ho = h_n.data_ptr<scalar_t>() + l * B * R;
      const scalar_t* cp = lstm ? c0.data_ptr<scalar_t>() + l * B * H : nullptr;
      scalar_t* co = lstm ? c_n.data_ptr<scalar_t>() + l * B * H : nullptr;
      scalar_t* out = has_proj ? full : ho;  // (B, H)
      product<scalar_t>(layer_input, B, I, w_ih, gi);  // (B, I) @ (I, G*H)
      product<scalar_t>(hp, B, R, w_hh, gh);           // (B, R) @ (R, G*H)
      for_rows(B, G * H, [&](int64_t b) {
        const scalar_t* ib = gi + b * G * H;
        const scalar_t* hb = gh + b * G * H;
        scalar_t* ob = out + b * H;
        if (lstm) {  // i, f, g, o: c' = f c + i g, h' = o tanh(c')
          const scalar_t* cb = cp + b * H;
          scalar_t* cob = co + b * H;
          RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t i = sigmoid(ib[j] + bi[j] + hb[j] + bh[j]);
            const scalar_t f = sigmoid(ib[H + j] + bi[H + j] + hb[H + j] + bh[H + j]);
            const scalar_t g = std::tanh(ib[2 * H + j] + bi[2 * H + j] + hb[2 * H + j] + bh[2 * H + j]);
            const scalar_t o = sigmoid(ib[3 * H + j] + bi[3 * H + j] + hb[3 * H + j] + bh[3 * H + j]);
            const scalar_t c = f * cb[j] + i * g;
            cob[j] = c;
            ob[j] = o * std::tanh(c);
          }
        } else if (gru) {  // r, z, n as in gru_forward
          const scalar_t* hpb = hp + b * H;
          RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t r = sigmoid(ib[j] + bi[j] + hb[j] + bh[j]);
            const scalar_t z = sigmoid(ib[H + j] + bi[H + j] + hb[H + j] + bh[H + j]);
            const scalar_t n = std::tanh(ib[2 * H + j] + bi[2 * H + j] + r * (hb[2 * H + j] + bh[2 * H + j]));
            ob[j] = n + z * (hpb[j] - n);
          }
        } else if (relu) {
          RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t v = ib[j] + bi[j] + hb[j] + bh[j];
            ob[j] = v > scalar_t(0) ? v : scalar_t(0);
          }
        } else {
          RNNKIT_SIMD
          for (int64_t j = 0; j < H; ++j) ob[j] = std::tanh(ib[j] + bi[j] + hb[j] + bh[j]);
        }
      });
      if (has_proj) {
        const Tensor w_hr = w[per_layer - 1].contiguous();
        TORCH_CHECK(w_hr.dim() == 2 && w_hr.size(0) == R && w_hr.size(1) == H && w_hr.scalar_type() == x.scalar_type(),
                    "stack_step: w_hr of layer ", l, " does not fit");
        product<scalar_t>(full, B, H, w_hr, ho);  // (B, H) @ (H, P)
      }
      layer_input = ho;
      I = R;
    }
  });
  std::vector<Tensor> result{h_n.select(0, L - 1), h_n};
  if (lstm) result.push_back(c_n);
  return result;
}

}  // namespace

TORCH_LIBRARY(rnnkit_native, m) {
  m.def(
      "gru_forward(Tensor xp, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor? valid, bool save, Tensor? packed)"
      " -> (Tensor, Tensor)",
        &gru_forward);
  m.def(
      "gru_backward(Tensor grad, Tensor hs, Tensor h0, Tensor saved, Tensor w_hh, bool has_bias, Tensor? valid,"
      " Tensor? packed) -> (Tensor, Tensor, Tensor, Tensor)",
      &gru_backward);
  m.def(
      "elman_forward(Tensor xp, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor? valid, bool relu, Tensor? packed)"
      " -> (Tensor, Tensor)",
      &elman_forward);
  m.def(
      "elman_backward(Tensor grad, Tensor hs, Tensor acts, Tensor h0, Tensor w_hh, bool has_bias, Tensor? valid,"
      " bool relu, Tensor? packed) -> (Tensor, Tensor, Tensor, Tensor)",
      &elman_backward);
  m.def(
      "lstm_ln_forward(Tensor xp, Tensor h0, Tensor c0, Tensor w_hh, Tensor? b_hh, Tensor gain, Tensor gain_c,"
      " Tensor bias_c, Tensor? valid, bool save, Tensor? packed, Tensor? w_low) -> (Tensor, Tensor, Tensor, Tensor,"
      " Tensor)",
      &lstm_ln_forward);
  m.def(
      "lstm_ln_backward(Tensor grad_h, Tensor grad_c, Tensor hs, Tensor cs, Tensor h0, Tensor c0, Tensor acts,"
      " Tensor normed, Tensor stats, Tensor w_hh, Tensor gain, Tensor gain_c, Tensor bias_c, bool has_bias, Tensor? valid,"
      " Tensor? packed, Tensor? w_low) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)",
      &lstm_ln_backward);
  m.def("mingru_forward(Tensor xp, Tensor h0, Tensor? valid) -> Tensor", &mingru_forward);
  m.def("mingru_backward(Tensor grad, Tensor xp, Tensor hs, Tensor h0, Tensor? valid) -> (Tensor, Tensor)",
        &mingru_backward);
  m.def("linear_scan_forward(Tensor a, Tensor b, Tensor h0) -> Tensor", &linear_scan_forward);
  m.def("linear_scan_backward(Tensor grad, Tensor a, Tensor hs, Tensor h0) -> (Tensor, Tensor, Tensor)",
        &linear_scan_backward);
  m.def("stack_step(Tensor x, Tensor[] state, Tensor[] weights, str mode, bool has_bias, bool has_proj) -> Tensor[]",
        &stack_step);
}
