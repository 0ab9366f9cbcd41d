// Inner loop of the CPU upfirdn2d: one polyphase branch of one output row.
//
//   out[t * os] = sum_{j < ny, m < nx} coef[j * nx + m] * rows[j][t * is + m]
//
// for t in [0, count). rows[j] point into zero-padded input rows, so no bounds
// checks are needed. Common StyleGAN2 shapes get fully unrolled versions that
// the compiler vectorises over t; anything else takes the generic loop.
#pragma once

#include <cstdint>

namespace sg2 {
namespace cpu_impl {

template <typename T>
using FirRowFn = void (*)(T* out, int64_t count, const T* const* rows,
                          const T* coef, int ny, int nx, int64_t is,
                          int64_t os);

// NY, NX, IS, OS fixed at compile time (the runtime arguments are ignored).
template <typename T, int NY, int NX, int IS, int OS>
void fir_row_fixed(T* __restrict out, int64_t count, const T* const* rows,
                   const T* coef, int, int, int64_t, int64_t) {
  T c[NY * NX];
  const T* r[NY];
  for (int k = 0; k < NY * NX; ++k) c[k] = coef[k];
  for (int j = 0; j < NY; ++j) r[j] = rows[j];
  for (int64_t t = 0; t < count; ++t) {
    T s = T(0);
    for (int j = 0; j < NY; ++j)
      for (int m = 0; m < NX; ++m) s += c[j * NX + m] * r[j][t * IS + m];
    out[t * OS] = s;
  }
}

template <typename T>
void fir_row_generic(T* __restrict out, int64_t count, const T* const* rows,
                     const T* coef, int ny, int nx, int64_t is, int64_t os) {
  for (int64_t t = 0; t < count; ++t) {
    T s = T(0);
    for (int j = 0; j < ny; ++j) {
      const T* r = rows[j] + t * is;
      const T* c = coef + j * nx;
      for (int m = 0; m < nx; ++m) s += c[m] * r[m];
    }
    out[t * os] = s;
  }
}

// Specialisations: 4x4 filter (plain, down 2, and the 2x2 phases of up 2) and
// the 1x4 / 4x1 passes of a separable 4-tap filter with the same factors.
template <typename T>
FirRowFn<T> pick_fir_row(int ny, int nx, int64_t is, int64_t os) {
#define SG2_FIR_CASE(NY, NX, IS, OS) \
  if (ny == NY && nx == NX && is == IS && os == OS) \
    return &fir_row_fixed<T, NY, NX, IS, OS>;
  SG2_FIR_CASE(4, 4, 1, 1)
  SG2_FIR_CASE(4, 4, 2, 1)
  SG2_FIR_CASE(2, 2, 1, 2)
  SG2_FIR_CASE(1, 4, 1, 1)
  SG2_FIR_CASE(1, 4, 2, 1)
  SG2_FIR_CASE(1, 2, 1, 2)
  SG2_FIR_CASE(4, 1, 1, 1)
  SG2_FIR_CASE(2, 1, 1, 1)
#undef SG2_FIR_CASE
  return &fir_row_generic<T>;
}

}  // namespace cpu_impl
}  // namespace sg2
