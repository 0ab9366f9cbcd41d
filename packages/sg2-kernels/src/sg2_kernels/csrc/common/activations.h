// Activation functions of bias_act and their first two derivatives, written
// once for the CPU and CUDA kernels. T is the compute type (float/double).
#pragma once

#include <cmath>

#include "hd.h"

namespace sg2 {

enum Act : int {
  kLinear = 0,
  kRelu = 1,
  kLrelu = 2,
  kTanh = 3,
  kSigmoid = 4,
  kElu = 5,
  kSelu = 6,
  kSoftplus = 7,
  kSwish = 8,
  kNumActs = 9,
};

constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;

template <typename T>
SG2_HD T sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

// act(v). Comparisons are written so that NaN propagates.
template <int ACT, typename T>
SG2_HD T act_fwd(T v, T alpha) {
  if constexpr (ACT == kLinear) {
    return v;
  } else if constexpr (ACT == kRelu) {
    return v < T(0) ? T(0) : v;
  } else if constexpr (ACT == kLrelu) {
    return v > T(0) ? v : alpha * v;
  } else if constexpr (ACT == kTanh) {
    return std::tanh(v);
  } else if constexpr (ACT == kSigmoid) {
    return sigmoid(v);
  } else if constexpr (ACT == kElu) {
    return v > T(0) ? v : alpha * std::expm1(v);
  } else if constexpr (ACT == kSelu) {
    return T(kSeluScale) * (v > T(0) ? v : T(kSeluAlpha) * std::expm1(v));
  } else if constexpr (ACT == kSoftplus) {
    return v > T(20) ? v : std::log1p(std::exp(v));  // torch's threshold
  } else {
    static_assert(ACT == kSwish, "unknown activation");
    return v * sigmoid(v);
  }
}

// d^ORDER act / dv^ORDER at v (ORDER 1 or 2). At kinks the conventions of
// torch autograd apply: the "v > 0" branch is taken only for v > 0.
template <int ACT, int ORDER, typename T>
SG2_HD T act_grad(T v, T alpha) {
  static_assert(ORDER == 1 || ORDER == 2, "order must be 1 or 2");
  if constexpr (ACT == kLinear) {
    return ORDER == 1 ? T(1) : T(0);
  } else if constexpr (ACT == kRelu) {
    return ORDER == 1 ? (v > T(0) ? T(1) : T(0)) : T(0);
  } else if constexpr (ACT == kLrelu) {
    return ORDER == 1 ? (v > T(0) ? T(1) : alpha) : T(0);
  } else if constexpr (ACT == kTanh) {
    const T t = std::tanh(v);
    const T d = T(1) - t * t;
    return ORDER == 1 ? d : T(-2) * t * d;
  } else if constexpr (ACT == kSigmoid) {
    const T s = sigmoid(v);
    const T d = s * (T(1) - s);
    return ORDER == 1 ? d : d * (T(1) - T(2) * s);
  } else if constexpr (ACT == kSoftplus) {
    const T s = sigmoid(v);  // softplus' = sigmoid
    return ORDER == 1 ? s : s * (T(1) - s);
  } else if constexpr (ACT == kElu) {
    return v > T(0) ? T(ORDER == 1 ? 1 : 0) : alpha * std::exp(v);
  } else if constexpr (ACT == kSelu) {
    return T(kSeluScale) *
           (v > T(0) ? T(ORDER == 1 ? 1 : 0) : T(kSeluAlpha) * std::exp(v));
  } else {
    static_assert(ACT == kSwish, "unknown activation");
    const T s = sigmoid(v);
    return ORDER == 1 ? s * (T(1) + v * (T(1) - s))
                      : s * (T(1) - s) * (T(2) + v * (T(1) - T(2) * s));
  }
}

// Runtime-selected versions, for loops that are not specialised per act.
template <typename T>
SG2_HD T act_fwd_rt(int act, T v, T alpha) {
  switch (act) {
    case kLinear: return act_fwd<kLinear>(v, alpha);
    case kRelu: return act_fwd<kRelu>(v, alpha);
    case kLrelu: return act_fwd<kLrelu>(v, alpha);
    case kTanh: return act_fwd<kTanh>(v, alpha);
    case kSigmoid: return act_fwd<kSigmoid>(v, alpha);
    case kElu: return act_fwd<kElu>(v, alpha);
    case kSelu: return act_fwd<kSelu>(v, alpha);
    case kSoftplus: return act_fwd<kSoftplus>(v, alpha);
    default: return act_fwd<kSwish>(v, alpha);
  }
}

template <int ORDER, typename T>
SG2_HD T act_grad_rt(int act, T v, T alpha) {
  switch (act) {
    case kLinear: return act_grad<kLinear, ORDER>(v, alpha);
    case kRelu: return act_grad<kRelu, ORDER>(v, alpha);
    case kLrelu: return act_grad<kLrelu, ORDER>(v, alpha);
    case kTanh: return act_grad<kTanh, ORDER>(v, alpha);
    case kSigmoid: return act_grad<kSigmoid, ORDER>(v, alpha);
    case kElu: return act_grad<kElu, ORDER>(v, alpha);
    case kSelu: return act_grad<kSelu, ORDER>(v, alpha);
    case kSoftplus: return act_grad<kSoftplus, ORDER>(v, alpha);
    default: return act_grad<kSwish, ORDER>(v, alpha);
  }
}

// clamp(a, -c, c) without branches (vectorisable); NaN passes through.
template <typename T>
SG2_HD T clamp_sym(T a, T c) {
  a = a < -c ? -c : a;
  return a > c ? c : a;
}

// The clamp's gradient mask: torch.clamp passes it where -c <= a <= c.
// (Bitwise & keeps the loops branch-free.)
template <typename T>
SG2_HD bool in_clamp(T a, T c) {
  return (a >= -c) & (a <= c);
}

}  // namespace sg2
