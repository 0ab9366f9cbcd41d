// CUDA bias_act kernels: elementwise grid-stride loops. The activation is a
// runtime switch; all threads take the same branch, so it costs next to
// nothing beside the memory traffic and keeps one kernel per dtype.
#include <cstdint>

#include "../common/activations.h"
#include "launch.cuh"
#include "launchers.h"

namespace sg2 {
namespace cuda_impl {
namespace {

template <typename T>
struct Params {
  int act;
  T alpha, gain, clamp;  // clamp < 0: no clamp
};

// x + b at flat index i of x viewed as [outer, C, inner]; b may be null.
template <typename scalar_t, typename T, typename index_t>
__device__ __forceinline__ T biased(const scalar_t* x, const T* b, index_t i,
                                    index_t C, index_t inner) {
  const T v = static_cast<T>(x[i]);
  return b == nullptr ? v : v + b[(i / inner) % C];
}

template <typename scalar_t, typename index_t>
__global__ void bias_act_kernel(const scalar_t* __restrict__ x,
                                const at::opmath_type<scalar_t>* __restrict__ b,
                                scalar_t* __restrict__ y, const int64_t n,
                                const index_t C, const index_t inner,
                                const Params<at::opmath_type<scalar_t>> p) {
  using T = at::opmath_type<scalar_t>;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += stride) {
    const index_t i = static_cast<index_t>(k);
    T a = p.gain * act_fwd_rt(p.act, biased(x, b, i, C, inner), p.alpha);
    if (p.clamp >= T(0)) a = clamp_sym(a, p.clamp);
    y[i] = static_cast<scalar_t>(a);
  }
}

template <int ORDER, typename scalar_t, typename index_t>
__global__ void bias_act_grad_kernel(
    const scalar_t* __restrict__ g, const scalar_t* __restrict__ x,
    const at::opmath_type<scalar_t>* __restrict__ b, scalar_t* __restrict__ dx,
    const int64_t n, const index_t C, const index_t inner,
    const Params<at::opmath_type<scalar_t>> p) {
  using T = at::opmath_type<scalar_t>;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += stride) {
    const index_t i = static_cast<index_t>(k);
    const T v = biased(x, b, i, C, inner);
    T d = static_cast<T>(g[i]) * p.gain * act_grad_rt<ORDER>(p.act, v, p.alpha);
    if (p.clamp >= T(0) && !in_clamp(p.gain * act_fwd_rt(p.act, v, p.alpha), p.clamp))
      d = T(0);
    dx[i] = static_cast<scalar_t>(d);
  }
}

template <typename T>
Params<T> params(const BiasActArgs& a) {
  return Params<T>{a.act, T(a.alpha), T(a.gain), T(a.clamp)};
}

}  // namespace

template <typename scalar_t>
void launch_bias_act(const scalar_t* x, const at::opmath_type<scalar_t>* b,
                     scalar_t* y, const BiasActArgs& a, cudaStream_t stream) {
  using T = at::opmath_type<scalar_t>;
  const unsigned int grid = grid_size(a.numel);
  if (fits_int32(a.numel)) {
    bias_act_kernel<scalar_t, int32_t><<<grid, kThreads, 0, stream>>>(
        x, b, y, a.numel, int32_t(a.C), int32_t(a.inner), params<T>(a));
  } else {
    bias_act_kernel<scalar_t, int64_t><<<grid, kThreads, 0, stream>>>(
        x, b, y, a.numel, a.C, a.inner, params<T>(a));
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t>
void launch_bias_act_grad(const scalar_t* g, const scalar_t* x,
                          const at::opmath_type<scalar_t>* b, scalar_t* dx,
                          const BiasActArgs& a, cudaStream_t stream) {
  using T = at::opmath_type<scalar_t>;
  const unsigned int grid = grid_size(a.numel);
  const bool small = fits_int32(a.numel);
  if (a.order == 1 && small) {
    bias_act_grad_kernel<1, scalar_t, int32_t><<<grid, kThreads, 0, stream>>>(
        g, x, b, dx, a.numel, int32_t(a.C), int32_t(a.inner), params<T>(a));
  } else if (a.order == 1) {
    bias_act_grad_kernel<1, scalar_t, int64_t><<<grid, kThreads, 0, stream>>>(
        g, x, b, dx, a.numel, a.C, a.inner, params<T>(a));
  } else if (small) {
    bias_act_grad_kernel<2, scalar_t, int32_t><<<grid, kThreads, 0, stream>>>(
        g, x, b, dx, a.numel, int32_t(a.C), int32_t(a.inner), params<T>(a));
  } else {
    bias_act_grad_kernel<2, scalar_t, int64_t><<<grid, kThreads, 0, stream>>>(
        g, x, b, dx, a.numel, a.C, a.inner, params<T>(a));
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

#define SG2_INSTANTIATE(T)                                                     \
  template void launch_bias_act<T>(const T*, const at::opmath_type<T>*, T*,    \
                                   const BiasActArgs&, cudaStream_t);          \
  template void launch_bias_act_grad<T>(const T*, const T*,                    \
                                        const at::opmath_type<T>*, T*,         \
                                        const BiasActArgs&, cudaStream_t);
SG2_INSTANTIATE(float)
SG2_INSTANTIATE(double)
SG2_INSTANTIATE(c10::Half)
SG2_INSTANTIATE(c10::BFloat16)
#undef SG2_INSTANTIATE

}  // namespace cuda_impl
}  // namespace sg2
