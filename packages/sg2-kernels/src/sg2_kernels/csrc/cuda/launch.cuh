// Launch geometry shared by the CUDA kernels: 1-D grid-stride loops.
#pragma once

#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace sg2 {
namespace cuda_impl {

constexpr int kThreads = 256;

// Enough blocks to fill the current device a few times over; the kernels
// loop over the rest.
inline unsigned int grid_size(int64_t n) {
  int device = 0, sms = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t needed = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(
      std::max<int64_t>(1, std::min<int64_t>(needed, int64_t(sms) * 16)));
}

// 32-bit index arithmetic is much faster on GPUs; use it when every index
// (and intermediate such as i + stride) fits.
inline bool fits_int32(int64_t n) {
  return n < std::numeric_limits<int32_t>::max() / 2;
}

}  // namespace cuda_impl
}  // namespace sg2
