// Raw-pointer entry points of the CUDA kernels (*_kernel.cu), called by the
// ATen-level wrappers (*_cuda.cpp). The split keeps the heavy ATen headers
// out of nvcc, which parses a translation unit once per GPU architecture.
// scalar_t: float, double, c10::Half or c10::BFloat16 (explicitly
// instantiated in the .cu files).
#pragma once

#include <ATen/OpMathType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace sg2 {
namespace cuda_impl {

struct UpFirDnArgs {
  int64_t planes, H, W, fh, fw, out_h, out_w;
  int64_t upx, upy, downx, downy, padx0, pady0;
};

// x: [planes, H, W] and y: [planes, out_h, out_w], contiguous; f: [fh, fw].
template <typename scalar_t>
void launch_upfirdn2d(const scalar_t* x, const at::opmath_type<scalar_t>* f,
                      scalar_t* y, const UpFirDnArgs& a, cudaStream_t stream);

struct BiasActArgs {
  int64_t numel, C, inner;  // x viewed as [numel / (C * inner), C, inner]
  int act, order;           // order: 1 or 2 (gradient only)
  double alpha, gain, clamp;
};

// b: C values or nullptr (no bias).
template <typename scalar_t>
void launch_bias_act(const scalar_t* x, const at::opmath_type<scalar_t>* b,
                     scalar_t* y, const BiasActArgs& a, cudaStream_t stream);

template <typename scalar_t>
void launch_bias_act_grad(const scalar_t* g, const scalar_t* x,
                          const at::opmath_type<scalar_t>* b, scalar_t* dx,
                          const BiasActArgs& a, cudaStream_t stream);

}  // namespace cuda_impl
}  // namespace sg2
