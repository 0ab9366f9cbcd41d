// CPU bias_act and bias_act_grad: one fused, parallel pass over contiguous x.
//
// x is viewed as [outer, C, inner]. A chunk of the flat index range is cut
// into segments that share one bias value (inner > 1) or that run along the
// channel axis (inner == 1). The piecewise-linear activations (linear, relu,
// lrelu) get branch-free loops specialised on bias layout and clamp, which the
// compiler vectorises; the others use one scalar loop, since exp/tanh
// dominate there anyway. half/bfloat16 go through small float buffers and
// reuse the float loops.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty_like.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../common/activations.h"
#include "../common/checks.h"
#include "../common/sg2_ops.h"

namespace sg2 {
namespace cpu_impl {
namespace {

template <typename T>
struct ActParams {
  int act, order;
  T alpha, gain, clamp;  // clamp < 0: no clamp
};

// One segment: `b` is one bias value, or one per element when bv is set.
template <typename T>
using FwdFn = void (*)(const T* x, T* y, int64_t n, const T* b, bool bv,
                       const ActParams<T>& p);
template <typename T>
using GradFn = void (*)(const T* g, const T* x, T* dx, int64_t n, const T* b,
                        bool bv, const ActParams<T>& p);

template <typename T, int ACT, bool BV, bool CLAMP>
void fwd_fast(const T* __restrict x, T* __restrict y, int64_t n,
              const T* __restrict b, bool, const ActParams<T>& p) {
  const T alpha = p.alpha, gain = p.gain, c = p.clamp;
  for (int64_t i = 0; i < n; ++i) {
    T a = gain * act_fwd<ACT>(x[i] + (BV ? b[i] : b[0]), alpha);
    if constexpr (CLAMP) a = clamp_sym(a, c);
    y[i] = a;
  }
}

// First derivative (the second one of these activations is 0).
template <typename T, int ACT, bool BV, bool CLAMP>
void grad_fast(const T* __restrict g, const T* __restrict x,
               T* __restrict dx, int64_t n, const T* __restrict b, bool,
               const ActParams<T>& p) {
  const T alpha = p.alpha, gain = p.gain, c = p.clamp;
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i] + (BV ? b[i] : b[0]);
    const T d = g[i] * gain * act_grad<ACT, 1>(v, alpha);
    if constexpr (CLAMP) {
      dx[i] = in_clamp(gain * act_fwd<ACT>(v, alpha), c) ? d : T(0);
    } else {
      dx[i] = d;
    }
  }
}

template <typename T>
void grad_zero(const T*, const T*, T* dx, int64_t n, const T*, bool,
               const ActParams<T>&) {
  std::fill(dx, dx + n, T(0));
}

template <typename T>
void fwd_any(const T* __restrict x, T* __restrict y, int64_t n,
             const T* __restrict b, bool bv, const ActParams<T>& p) {
  for (int64_t i = 0; i < n; ++i) {
    T a = p.gain * act_fwd_rt(p.act, x[i] + b[bv ? i : 0], p.alpha);
    if (p.clamp >= T(0)) a = clamp_sym(a, p.clamp);
    y[i] = a;
  }
}

template <typename T>
void grad_any(const T* __restrict g, const T* __restrict x, T* __restrict dx,
              int64_t n, const T* __restrict b, bool bv,
              const ActParams<T>& p) {
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i] + b[bv ? i : 0];
    const T d = p.order == 1 ? act_grad_rt<1>(p.act, v, p.alpha)
                             : act_grad_rt<2>(p.act, v, p.alpha);
    const bool keep = p.clamp < T(0) ||
                      in_clamp(p.gain * act_fwd_rt(p.act, v, p.alpha), p.clamp);
    dx[i] = keep ? g[i] * p.gain * d : T(0);
  }
}

// The vectorisable loop for linear/relu/lrelu with this bias layout and
// clamp, else the generic loop.
#define SG2_PICK_FAST(LOOP, ACT)                                 \
  if (p.act == ACT)                                              \
    return bv ? (clamp ? &LOOP<T, ACT, true, true>               \
                       : &LOOP<T, ACT, true, false>)             \
              : (clamp ? &LOOP<T, ACT, false, true>              \
                       : &LOOP<T, ACT, false, false>);

template <typename T>
FwdFn<T> pick_fwd(const ActParams<T>& p, bool bv) {
  const bool clamp = p.clamp >= T(0);
  SG2_PICK_FAST(fwd_fast, kLinear)
  SG2_PICK_FAST(fwd_fast, kRelu)
  SG2_PICK_FAST(fwd_fast, kLrelu)
  return &fwd_any<T>;
}

template <typename T>
GradFn<T> pick_grad(const ActParams<T>& p, bool bv) {
  const bool clamp = p.clamp >= T(0);
  if (p.order == 1) {
    SG2_PICK_FAST(grad_fast, kLinear)
    SG2_PICK_FAST(grad_fast, kRelu)
    SG2_PICK_FAST(grad_fast, kLrelu)
  } else if (p.act <= kLrelu) {
    return &grad_zero<T>;
  }
  return &grad_any<T>;
}

#undef SG2_PICK_FAST

// Calls fn(i, n, bias) for segments of at most max_len elements that cover
// [begin, end); with a per-element bias (inner == 1), bias points at the
// segment's first channel.
template <typename T, typename Fn>
void for_each_segment(int64_t begin, int64_t end, const BiasActShape& s,
                      const T* b, int64_t max_len, const Fn& fn) {
  static const T zero = T(0);
  for (int64_t i = begin; i < end;) {
    int64_t n = std::min(end - i, max_len);
    const T* bias = &zero;
    if (s.has_bias && s.inner == 1) {
      const int64_t c = i % s.C;
      n = std::min(n, s.C - c);
      bias = b + c;
    } else if (s.has_bias) {  // one bias value per row of `inner` elements
      const int64_t row = i / s.inner;
      n = std::min(n, (row + 1) * s.inner - i);
      bias = b + row % s.C;
    }
    fn(i, n, bias);
    i += n;
  }
}

// half/bfloat16 segments are converted through float buffers of this size.
constexpr int64_t kBuf = 1024;

template <typename scalar_t, typename acc_t>
constexpr int64_t max_segment() {
  return std::is_same_v<scalar_t, acc_t> ? std::numeric_limits<int64_t>::max()
                                         : kBuf;
}

// Elements per parallel task: the cheap activations are memory bound.
int64_t grain_for(int64_t act) { return act <= kLrelu ? 32768 : 4096; }

template <typename scalar_t>
void bias_act_kernel(const scalar_t* x, const at::Tensor& b, scalar_t* y,
                     const BiasActShape& s,
                     const ActParams<at::opmath_type<scalar_t>>& p) {
  using acc_t = at::opmath_type<scalar_t>;
  const bool bv = s.has_bias && s.inner == 1;
  const FwdFn<acc_t> fn = pick_fwd(p, bv);
  const acc_t* bp = s.has_bias ? b.const_data_ptr<acc_t>() : nullptr;
  at::parallel_for(0, s.numel, grain_for(p.act), [&](int64_t lo, int64_t hi) {
    std::vector<acc_t> buf(std::is_same_v<scalar_t, acc_t> ? 0 : 2 * kBuf);
    for_each_segment(lo, hi, s, bp, max_segment<scalar_t, acc_t>(),
                     [&](int64_t i, int64_t n, const acc_t* bias) {
      if constexpr (std::is_same_v<scalar_t, acc_t>) {
        fn(x + i, y + i, n, bias, bv, p);
      } else {
        acc_t *xb = buf.data(), *yb = xb + kBuf;
        for (int64_t k = 0; k < n; ++k) xb[k] = acc_t(x[i + k]);
        fn(xb, yb, n, bias, bv, p);
        for (int64_t k = 0; k < n; ++k) y[i + k] = scalar_t(yb[k]);
      }
    });
  });
}

template <typename scalar_t>
void bias_act_grad_kernel(const scalar_t* g, const scalar_t* x,
                          const at::Tensor& b, scalar_t* dx,
                          const BiasActShape& s,
                          const ActParams<at::opmath_type<scalar_t>>& p) {
  using acc_t = at::opmath_type<scalar_t>;
  const bool bv = s.has_bias && s.inner == 1;
  const GradFn<acc_t> fn = pick_grad(p, bv);
  const acc_t* bp = s.has_bias ? b.const_data_ptr<acc_t>() : nullptr;
  at::parallel_for(0, s.numel, grain_for(p.act), [&](int64_t lo, int64_t hi) {
    std::vector<acc_t> buf(std::is_same_v<scalar_t, acc_t> ? 0 : 3 * kBuf);
    for_each_segment(lo, hi, s, bp, max_segment<scalar_t, acc_t>(),
                     [&](int64_t i, int64_t n, const acc_t* bias) {
      if constexpr (std::is_same_v<scalar_t, acc_t>) {
        fn(g + i, x + i, dx + i, n, bias, bv, p);
      } else {
        acc_t *gb = buf.data(), *xb = gb + kBuf, *db = xb + kBuf;
        for (int64_t k = 0; k < n; ++k) gb[k] = acc_t(g[i + k]);
        for (int64_t k = 0; k < n; ++k) xb[k] = acc_t(x[i + k]);
        fn(gb, xb, db, n, bias, bv, p);
        for (int64_t k = 0; k < n; ++k) dx[i + k] = scalar_t(db[k]);
      }
    });
  });
}

}  // namespace

at::Tensor bias_act(const at::Tensor& x_in, const at::Tensor& b_in,
                    int64_t dim, int64_t act, double alpha, double gain,
                    double clamp) {
  const BiasActShape s = check_bias_act(x_in, b_in, dim, act, at::kCPU);
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  if (s.numel == 0) return y;
  const at::Tensor b = bias_for(b_in, x, s);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "sg2_bias_act_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const ActParams<acc_t> p{int(act), 1, acc_t(alpha), acc_t(gain),
                                 acc_t(clamp)};
        bias_act_kernel<scalar_t>(x.const_data_ptr<scalar_t>(), b,
                                  y.mutable_data_ptr<scalar_t>(), s, p);
      });
  return y;
}

at::Tensor bias_act_grad(const at::Tensor& g_in, const at::Tensor& x_in,
                         const at::Tensor& b_in, int64_t dim, int64_t act,
                         double alpha, double gain, double clamp,
                         int64_t order) {
  const BiasActShape s = check_bias_act(x_in, b_in, dim, act, at::kCPU);
  check_bias_act_grad(g_in, x_in, order);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor g = g_in.contiguous();
  at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
  if (s.numel == 0) return dx;
  const at::Tensor b = bias_for(b_in, x, s);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "sg2_bias_act_grad_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const ActParams<acc_t> p{int(act), int(order), acc_t(alpha),
                                 acc_t(gain), acc_t(clamp)};
        bias_act_grad_kernel<scalar_t>(g.const_data_ptr<scalar_t>(),
                                       x.const_data_ptr<scalar_t>(), b,
                                       dx.mutable_data_ptr<scalar_t>(), s, p);
      });
  return dx;
}

}  // namespace cpu_impl
}  // namespace sg2
