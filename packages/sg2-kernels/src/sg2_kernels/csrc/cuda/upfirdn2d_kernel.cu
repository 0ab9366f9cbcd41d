// CUDA upfirdn2d kernel: one thread per output sample (grid-stride loop).
// Like the CPU version it works in polyphase form: each output visits only
// the taps that land on real input samples (polyphase.h), clipped to the
// input. The filter is small and shared by all threads, so it stays cached.
#include <cstdint>

#include "../common/polyphase.h"
#include "launch.cuh"
#include "launchers.h"

namespace sg2 {
namespace cuda_impl {
namespace {

template <typename index_t>
struct Geometry {
  index_t H, W, fh, fw, out_h, out_w;
  index_t upx, upy, downx, downy, padx0, pady0;
};

template <typename index_t>
__device__ __forceinline__ index_t min_of(index_t a, index_t b) {
  return a < b ? a : b;
}

template <typename scalar_t, typename index_t>
__global__ void upfirdn2d_kernel(const scalar_t* __restrict__ x,
                                 const at::opmath_type<scalar_t>* __restrict__ f,
                                 scalar_t* __restrict__ y,
                                 const Geometry<index_t> g, const int64_t total) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const index_t idx = static_cast<index_t>(i);
    const index_t ox = idx % g.out_w;
    const index_t t = idx / g.out_w;
    const index_t oy = t % g.out_h;
    const index_t plane = t / g.out_h;
    const Phase<index_t> py = phase_of<index_t>(oy, g.upy, g.downy, g.pady0, g.fh);
    const Phase<index_t> px = phase_of<index_t>(ox, g.upx, g.downx, g.padx0, g.fw);
    // Taps j (rows) and m (columns) whose input sample lies inside x.
    const index_t j0 = py.i0 < 0 ? -py.i0 : 0;
    const index_t j1 = min_of(py.n, g.H - py.i0);
    const index_t m0 = px.i0 < 0 ? -px.i0 : 0;
    const index_t m1 = min_of(px.n, g.W - px.i0);
    const scalar_t* xp = x + plane * g.H * g.W;
    acc_t sum = acc_t(0);
    for (index_t j = j0; j < j1; ++j) {
      const scalar_t* xr = xp + (py.i0 + j) * g.W + px.i0;
      const acc_t* fr = f + (py.k0 + j * g.upy) * g.fw + px.k0;
      for (index_t m = m0; m < m1; ++m)
        sum += static_cast<acc_t>(xr[m]) * fr[m * g.upx];
    }
    y[idx] = static_cast<scalar_t>(sum);
  }
}

template <typename scalar_t, typename index_t>
void launch_with(const scalar_t* x, const at::opmath_type<scalar_t>* f,
                 scalar_t* y, const UpFirDnArgs& a, cudaStream_t stream) {
  Geometry<index_t> g;
  g.H = index_t(a.H);
  g.W = index_t(a.W);
  g.fh = index_t(a.fh);
  g.fw = index_t(a.fw);
  g.out_h = index_t(a.out_h);
  g.out_w = index_t(a.out_w);
  g.upx = index_t(a.upx);
  g.upy = index_t(a.upy);
  g.downx = index_t(a.downx);
  g.downy = index_t(a.downy);
  g.padx0 = index_t(a.padx0);
  g.pady0 = index_t(a.pady0);
  const int64_t total = a.planes * a.out_h * a.out_w;
  upfirdn2d_kernel<scalar_t, index_t>
      <<<grid_size(total), kThreads, 0, stream>>>(x, f, y, g, total);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

}  // namespace

template <typename scalar_t>
void launch_upfirdn2d(const scalar_t* x, const at::opmath_type<scalar_t>* f,
                      scalar_t* y, const UpFirDnArgs& a, cudaStream_t stream) {
  // Largest magnitudes the index arithmetic meets: flat indices of x and y,
  // and the zero-inserted coordinates o * down - pad0 (+ taps).
  const int64_t flat = std::max(a.planes * a.H * a.W, a.planes * a.out_h * a.out_w);
  const int64_t coord = std::max(a.out_h * a.downy + abs64(a.pady0) + a.fh,
                                 a.out_w * a.downx + abs64(a.padx0) + a.fw);
  if (fits_int32(flat) && fits_int32(coord)) {
    launch_with<scalar_t, int32_t>(x, f, y, a, stream);
  } else {
    launch_with<scalar_t, int64_t>(x, f, y, a, stream);
  }
}

#define SG2_INSTANTIATE(T)                                              \
  template void launch_upfirdn2d<T>(const T*, const at::opmath_type<T>*, \
                                    T*, const UpFirDnArgs&, cudaStream_t);
SG2_INSTANTIATE(float)
SG2_INSTANTIATE(double)
SG2_INSTANTIATE(c10::Half)
SG2_INSTANTIATE(c10::BFloat16)
#undef SG2_INSTANTIATE

}  // namespace cuda_impl
}  // namespace sg2
