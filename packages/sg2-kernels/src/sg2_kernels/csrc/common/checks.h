// Argument checks shared by the CPU and CUDA entry points. The Python side
// validates with friendlier messages; these guard against crashes.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <cstdint>

namespace sg2 {

inline bool is_supported_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf ||
         t == at::kBFloat16;
}

// Compute type of a data type: float, except double for double.
inline at::ScalarType opmath_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

struct UpFirDnSize {
  int64_t planes, H, W, fh, fw, out_h, out_w;
};

inline UpFirDnSize check_upfirdn2d(const at::Tensor& x, const at::Tensor& f,
                                   int64_t upx, int64_t upy, int64_t downx,
                                   int64_t downy, int64_t padx0,
                                   int64_t padx1, int64_t pady0,
                                   int64_t pady1, at::DeviceType device) {
  TORCH_CHECK(x.device().type() == device, "upfirdn2d: x must be a ",
              c10::DeviceTypeName(device), " tensor, got ", x.device());
  TORCH_CHECK(f.device() == x.device(),
              "upfirdn2d: f must be on the same device as x (", x.device(),
              "), got ", f.device());
  TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must be [N, C, H, W], got ",
              x.sizes());
  TORCH_CHECK(is_supported_dtype(x.scalar_type()),
              "upfirdn2d: x must be float16, bfloat16, float32 or float64, "
              "got ", x.scalar_type());
  TORCH_CHECK(f.dim() == 2 && f.size(0) >= 1 && f.size(1) >= 1,
              "upfirdn2d: f must be a non-empty [fh, fw] filter, got ",
              f.sizes());
  TORCH_CHECK(f.scalar_type() == opmath_dtype(x.scalar_type()),
              "upfirdn2d: f must be ", opmath_dtype(x.scalar_type()),
              " for x of dtype ", x.scalar_type(), ", got ", f.scalar_type());
  TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1,
              "upfirdn2d: up and down factors must be >= 1, got up=(", upx,
              ", ", upy, ") down=(", downx, ", ", downy, ")");
  UpFirDnSize s;
  s.planes = x.size(0) * x.size(1);
  s.H = x.size(2);
  s.W = x.size(3);
  s.fh = f.size(0);
  s.fw = f.size(1);
  TORCH_CHECK(s.H >= 1 && s.W >= 1, "upfirdn2d: x must have H, W >= 1, got ",
              x.sizes());
  const int64_t span_h = s.H * upy + pady0 + pady1 - s.fh;
  const int64_t span_w = s.W * upx + padx0 + padx1 - s.fw;
  TORCH_CHECK(span_h >= 0 && span_w >= 0,
              "upfirdn2d: output would be empty: input ", x.sizes(),
              ", filter ", f.sizes(), ", up=(", upx, ", ", upy, "), pad=(",
              padx0, ", ", padx1, ", ", pady0, ", ", pady1, ")");
  s.out_h = span_h / downy + 1;
  s.out_w = span_w / downx + 1;
  return s;
}

// Contiguous x viewed as [outer, C, inner] with C = x.size(dim).
struct BiasActShape {
  int64_t numel, C, inner;
  bool has_bias;
};

inline BiasActShape check_bias_act(const at::Tensor& x, const at::Tensor& b,
                                   int64_t dim, int64_t act,
                                   at::DeviceType device) {
  TORCH_CHECK(x.device().type() == device, "bias_act: x must be a ",
              c10::DeviceTypeName(device), " tensor, got ", x.device());
  TORCH_CHECK(is_supported_dtype(x.scalar_type()),
              "bias_act: x must be float16, bfloat16, float32 or float64, "
              "got ", x.scalar_type());
  TORCH_CHECK(act >= 0 && act <= 8, "bias_act: act must be in [0, 8], got ",
              act);
  BiasActShape s;
  s.numel = x.numel();
  s.has_bias = b.defined() && b.numel() > 0;
  s.C = 1;
  s.inner = 1;
  if (s.has_bias) {
    TORCH_CHECK(b.device() == x.device(),
                "bias_act: b must be on the same device as x (", x.device(),
                "), got ", b.device());
    TORCH_CHECK(at::isFloatingType(b.scalar_type()),
                "bias_act: b must be floating point, got ", b.scalar_type());
    TORCH_CHECK(x.dim() >= 1, "bias_act: a bias needs x with dim >= 1");
    TORCH_CHECK(dim >= -x.dim() && dim < x.dim(), "bias_act: dim ", dim,
                " out of range for x of shape ", x.sizes());
    if (dim < 0) dim += x.dim();
    TORCH_CHECK(b.dim() == 1 && b.numel() == x.size(dim),
                "bias_act: b must be 1-D with x.size(", dim,
                ") = ", x.size(dim), " elements, got ", b.sizes());
    s.C = x.size(dim);
    for (int64_t d = dim + 1; d < x.dim(); ++d) s.inner *= x.size(d);
  }
  return s;
}

// The bias in the compute type, contiguous (undefined when there is none).
inline at::Tensor bias_for(const at::Tensor& b, const at::Tensor& x,
                           const BiasActShape& s) {
  return s.has_bias ? b.to(opmath_dtype(x.scalar_type())).contiguous()
                    : at::Tensor();
}

inline void check_bias_act_grad(const at::Tensor& g, const at::Tensor& x,
                                int64_t order) {
  TORCH_CHECK(g.device() == x.device(),
              "bias_act_grad: g must be on the same device as x (",
              x.device(), "), got ", g.device());
  TORCH_CHECK(g.scalar_type() == x.scalar_type(),
              "bias_act_grad: g must have the dtype of x (", x.scalar_type(),
              "), got ", g.scalar_type());
  TORCH_CHECK(g.sizes() == x.sizes(), "bias_act_grad: g must have the shape ",
              "of x ", x.sizes(), ", got ", g.sizes());
  TORCH_CHECK(order == 1 || order == 2,
              "bias_act_grad: order must be 1 or 2, got ", order);
}

}  // namespace sg2
