// Entry points of the two compiled modules (_cpp and _cuda). Both expose the
// same three functions; the Python side chooses a module per device.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#define SG2_DECLARE_OPS                                                        \
  /* Zero-insert upsample, pad/crop, cross-correlate with f, downsample. */    \
  at::Tensor upfirdn2d(const at::Tensor& x, const at::Tensor& f, int64_t upx,  \
                       int64_t upy, int64_t downx, int64_t downy,              \
                       int64_t padx0, int64_t padx1, int64_t pady0,            \
                       int64_t pady1);                                         \
  /* y = clamp(gain * act(x + b), -clamp, clamp); b may be empty. */          \
  at::Tensor bias_act(const at::Tensor& x, const at::Tensor& b, int64_t dim,   \
                      int64_t act, double alpha, double gain, double clamp);   \
  /* g * gain * act^(order)(x + b) * [|gain * act(x + b)| <= clamp]. */        \
  at::Tensor bias_act_grad(const at::Tensor& g, const at::Tensor& x,           \
                           const at::Tensor& b, int64_t dim, int64_t act,      \
                           double alpha, double gain, double clamp,            \
                           int64_t order);

namespace sg2 {
namespace cpu_impl {
SG2_DECLARE_OPS
}  // namespace cpu_impl
namespace cuda_impl {
SG2_DECLARE_OPS
}  // namespace cuda_impl
}  // namespace sg2

#undef SG2_DECLARE_OPS
