// Inner kernel of the CPU upfirdn2d: one polyphase branch over a block of
// output rows. A "sample" is L consecutive values: L = 1 (plain rows), or
// L = kFirLanes planes interleaved so that small planes still fill SIMD
// registers. All strides count samples. For ty < rows, tx < cols:
//
//   out[ty * out_row_stride + tx * out_col_stride] =
//       sum_{j < ny, m < nx} coef[j * nx + m] *
//           in[ty * in_row_stride + tx * in_col_stride + j * tap_row_stride + m]
//
// `in` points into a zero-padded copy of the input, so there are no bounds
// checks. The kernels are compiled twice (baseline and AVX2+FMA, see
// fir_block_impl.h); pick_fir_block() returns the best one for this CPU.
#pragma once

#include <cstdint>

namespace sg2 {
namespace cpu_impl {

constexpr int kFirLanes = 8;

template <typename T>
struct FirBlockArgs {
  T* out;
  int64_t rows, cols;
  int64_t out_row_stride, out_col_stride;
  const T* in;
  int64_t in_row_stride, in_col_stride, tap_row_stride;
  const T* coef;
  int ny, nx;
};

template <typename T>
using FirBlockFn = void (*)(const FirBlockArgs<T>& a);

// T is float or double, lanes is 1 or kFirLanes. Specialised for the
// StyleGAN2 shapes; the rest take a generic loop.
template <typename T>
FirBlockFn<T> pick_fir_block(int lanes, int ny, int nx, int64_t in_col_stride,
                             int64_t out_col_stride);

}  // namespace cpu_impl
}  // namespace sg2
