// CPU bias_act and bias_act_grad: one fused, parallel pass over contiguous x.
//
// x is viewed as [outer, C, inner]. A chunk of the flat index range is cut
// into segments that share one bias value (inner > 1) or that run along the
// channel axis (inner == 1), so the innermost loops are branch-free and the
// compiler can vectorise the piecewise-linear activations. half/bfloat16 go
// through small float buffers and reuse the float loops.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include "../common/activations.h"
#include "../common/checks.h"
#include "../common/sg2_ops.h"

namespace sg2 {
namespace cpu_impl {
namespace {

template <typename T>
struct ActParams {
  T alpha, gain, clamp;  // clamp < 0: no clamp
};

// `b` is one bias value (BV = false) or one per element (BV = true).
template <typename T>
using FwdFn = void (*)(const T* x, T* y, int64_t n, const T* b,
                       const ActParams<T>& p);
template <typename T>
using GradFn = void (*)(const T* g, const T* x, T* dx, int64_t n, const T* b,
                        const ActParams<T>& p);

template <typename T, int ACT, bool BV>
void fwd_loop(const T* __restrict x, T* __restrict y, int64_t n,
              const T* __restrict b, const ActParams<T>& p) {
  const T alpha = p.alpha, gain = p.gain, c = p.clamp;
  const bool clamp = c >= T(0);
  for (int64_t i = 0; i < n; ++i) {
    T a = gain * act_fwd<ACT>(x[i] + (BV ? b[i] : b[0]), alpha);
    if (clamp) a = std::min(std::max(a, -c), c);
    y[i] = a;
  }
}

template <typename T, int ACT, int ORDER, bool BV>
void grad_loop(const T* __restrict g, const T* __restrict x, T* __restrict dx,
               int64_t n, const T* __restrict b, const ActParams<T>& p) {
  const T alpha = p.alpha, gain = p.gain, c = p.clamp;
  const bool clamp = c >= T(0);
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i] + (BV ? b[i] : b[0]);
    T d = g[i] * gain * act_grad<ACT, ORDER>(v, alpha);
    // torch.clamp passes the gradient where -c <= value <= c.
    if (clamp && !(std::abs(gain * act_fwd<ACT>(v, alpha)) <= c)) d = T(0);
    dx[i] = d;
  }
}

template <typename T, bool BV, int... A>
FwdFn<T> fwd_table(int64_t act, std::integer_sequence<int, A...>) {
  static constexpr FwdFn<T> table[] = {&fwd_loop<T, A, BV>...};
  return table[act];
}

template <typename T, bool BV, int... A>
GradFn<T> grad_table(int64_t act, int64_t order,
                     std::integer_sequence<int, A...>) {
  static constexpr GradFn<T> first[] = {&grad_loop<T, A, 1, BV>...};
  static constexpr GradFn<T> second[] = {&grad_loop<T, A, 2, BV>...};
  return order == 1 ? first[act] : second[act];
}

using Acts = std::make_integer_sequence<int, kNumActs>;

// Calls fn(i, n, bias, bias_is_vector) for segments of at most max_len
// elements that cover [begin, end).
template <typename T, typename Fn>
void for_each_segment(int64_t begin, int64_t end, const BiasActShape& s,
                      const T* b, int64_t max_len, const Fn& fn) {
  static const T zero = T(0);
  for (int64_t i = begin; i < end;) {
    int64_t n = std::min(end - i, max_len);
    const T* bias = &zero;
    bool bv = false;
    if (s.has_bias && s.inner == 1) {  // bias varies along the segment
      const int64_t c = i % s.C;
      n = std::min(n, s.C - c);
      bias = b + c;
      bv = true;
    } else if (s.has_bias) {  // one bias value per row of `inner` elements
      const int64_t row = i / s.inner;
      n = std::min(n, (row + 1) * s.inner - i);
      bias = b + row % s.C;
    }
    fn(i, n, bias, bv);
    i += n;
  }
}

// half/bfloat16 segments are converted through float buffers of this size.
constexpr int64_t kBuf = 1024;

template <typename scalar_t, typename acc_t>
int64_t max_segment() {
  return std::is_same_v<scalar_t, acc_t> ? std::numeric_limits<int64_t>::max()
                                         : kBuf;
}

// Runs one segment (n <= max_segment()) on scalar_t data.
template <typename scalar_t, typename acc_t>
void run_fwd(FwdFn<acc_t> fn, const scalar_t* x, scalar_t* y, int64_t n,
             const acc_t* b, const ActParams<acc_t>& p) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    fn(x, y, n, b, p);
  } else {
    acc_t xb[kBuf], yb[kBuf];
    for (int64_t k = 0; k < n; ++k) xb[k] = acc_t(x[k]);
    fn(xb, yb, n, b, p);
    for (int64_t k = 0; k < n; ++k) y[k] = scalar_t(yb[k]);
  }
}

template <typename scalar_t, typename acc_t>
void run_grad(GradFn<acc_t> fn, const scalar_t* g, const scalar_t* x,
              scalar_t* dx, int64_t n, const acc_t* b,
              const ActParams<acc_t>& p) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    fn(g, x, dx, n, b, p);
  } else {
    acc_t gb[kBuf], xb[kBuf], db[kBuf];
    for (int64_t k = 0; k < n; ++k) gb[k] = acc_t(g[k]);
    for (int64_t k = 0; k < n; ++k) xb[k] = acc_t(x[k]);
    fn(gb, xb, db, n, b, p);
    for (int64_t k = 0; k < n; ++k) dx[k] = scalar_t(db[k]);
  }
}

// Grain: cheap activations are memory bound; transcendental ones are not.
int64_t grain_for(int64_t act) {
  return (act == kLinear || act == kRelu || act == kLrelu) ? 32768 : 4096;
}

}  // namespace

at::Tensor bias_act(const at::Tensor& x_in, const at::Tensor& b_in,
                    int64_t dim, int64_t act, double alpha, double gain,
                    double clamp) {
  const BiasActShape s = check_bias_act(x_in, b_in, dim, act, at::kCPU);
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  if (s.numel == 0) return y;
  const at::ScalarType acc_type = opmath_dtype(x.scalar_type());
  const at::Tensor b =
      s.has_bias ? b_in.to(acc_type).contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "sg2_bias_act_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const ActParams<acc_t> p{acc_t(alpha), acc_t(gain), acc_t(clamp)};
        const FwdFn<acc_t> scalar_fn = fwd_table<acc_t, false>(act, Acts{});
        const FwdFn<acc_t> vector_fn = fwd_table<acc_t, true>(act, Acts{});
        const acc_t* bp = s.has_bias ? b.const_data_ptr<acc_t>() : nullptr;
        const scalar_t* xp = x.const_data_ptr<scalar_t>();
        scalar_t* yp = y.mutable_data_ptr<scalar_t>();
        at::parallel_for(0, s.numel, grain_for(act), [&](int64_t lo, int64_t hi) {
          for_each_segment(lo, hi, s, bp, max_segment<scalar_t, acc_t>(),
                           [&](int64_t i, int64_t n, const acc_t* bias, bool bv) {
            run_fwd(bv ? vector_fn : scalar_fn, xp + i, yp + i, n, bias, p);
          });
        });
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
  const at::ScalarType acc_type = opmath_dtype(x.scalar_type());
  const at::Tensor b =
      s.has_bias ? b_in.to(acc_type).contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "sg2_bias_act_grad_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const ActParams<acc_t> p{acc_t(alpha), acc_t(gain), acc_t(clamp)};
        const GradFn<acc_t> scalar_fn =
            grad_table<acc_t, false>(act, order, Acts{});
        const GradFn<acc_t> vector_fn =
            grad_table<acc_t, true>(act, order, Acts{});
        const acc_t* bp = s.has_bias ? b.const_data_ptr<acc_t>() : nullptr;
        const scalar_t* gp = g.const_data_ptr<scalar_t>();
        const scalar_t* xp = x.const_data_ptr<scalar_t>();
        scalar_t* dxp = dx.mutable_data_ptr<scalar_t>();
        at::parallel_for(0, s.numel, grain_for(act), [&](int64_t lo, int64_t hi) {
          for_each_segment(lo, hi, s, bp, max_segment<scalar_t, acc_t>(),
                           [&](int64_t i, int64_t n, const acc_t* bias, bool bv) {
            run_grad(bv ? vector_fn : scalar_fn, gp + i, xp + i, dxp + i, n,
                     bias, p);
          });
        });
      });
  return dx;
}

}  // namespace cpu_impl
}  // namespace sg2
