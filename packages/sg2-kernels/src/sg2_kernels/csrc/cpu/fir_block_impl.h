// Kernel templates for fir_block.h. Included (once each) by
// fir_block_baseline.cpp and fir_block_avx2.cpp, which compile the same
// source for different instruction sets. It therefore includes nothing and
// defines only internal-linkage functions: no inline function may be shared
// between the two objects, or the linker could hand AVX2 code to a CPU
// without AVX2.
//
// Expects SG2_FIR_ISA (namespace name) to be defined and <cstdint> and
// fir_block.h to be included before the target pragma.

namespace sg2 {
namespace cpu_impl {
namespace SG2_FIR_ISA {
namespace {

// Shape fixed at compile time: the tap loops unroll and the compiler
// vectorises over output columns (L = 1) or over the L interleaved planes.
// Each filter row has its own accumulator: one chain of NY * NX dependent
// multiply-adds would make the loop latency-bound.
template <typename T, int L, int NY, int NX, int ISX, int OSX>
void fir_fixed(const FirBlockArgs<T>& a) {
  T c[NY * NX];
  for (int k = 0; k < NY * NX; ++k) c[k] = a.coef[k];
  for (int64_t ty = 0; ty < a.rows; ++ty) {
    const T* r[NY];
    for (int j = 0; j < NY; ++j)
      r[j] = a.in + (ty * a.in_row_stride + j * a.tap_row_stride) * L;
    T* __restrict out = a.out + ty * a.out_row_stride * L;
    for (int64_t tx = 0; tx < a.cols; ++tx) {
      T s[NY][L];
      for (int j = 0; j < NY; ++j)
        for (int l = 0; l < L; ++l) s[j][l] = T(0);
      for (int j = 0; j < NY; ++j)
        for (int m = 0; m < NX; ++m)
          for (int l = 0; l < L; ++l)
            s[j][l] += c[j * NX + m] * r[j][(tx * ISX + m) * L + l];
      for (int l = 0; l < L; ++l) {
        T sum = s[0][l];
        for (int j = 1; j < NY; ++j) sum += s[j][l];
        out[tx * OSX * L + l] = sum;
      }
    }
  }
}

template <typename T, int L>
void fir_generic(const FirBlockArgs<T>& a) {
  for (int64_t ty = 0; ty < a.rows; ++ty) {
    T* __restrict out = a.out + ty * a.out_row_stride * L;
    for (int64_t tx = 0; tx < a.cols; ++tx) {
      const T* in = a.in + (ty * a.in_row_stride + tx * a.in_col_stride) * L;
      T s[L];
      for (int l = 0; l < L; ++l) s[l] = T(0);
      for (int j = 0; j < a.ny; ++j) {
        const T* r = in + j * a.tap_row_stride * L;
        const T* c = a.coef + j * a.nx;
        for (int m = 0; m < a.nx; ++m)
          for (int l = 0; l < L; ++l) s[l] += c[m] * r[m * L + l];
      }
      for (int l = 0; l < L; ++l) out[tx * a.out_col_stride * L + l] = s[l];
    }
  }
}

// 4x4 filter: plain, down 2, and the 2x2 phases of up 2; then the 1x4 and 4x1
// passes of a separable 4-tap filter with the same factors.
template <typename T, int L>
FirBlockFn<T> pick(int ny, int nx, int64_t isx, int64_t osx) {
#define SG2_FIR_CASE(NY, NX, ISX, OSX)                  \
  if (ny == NY && nx == NX && isx == ISX && osx == OSX) \
    return &fir_fixed<T, L, NY, NX, ISX, OSX>;
  SG2_FIR_CASE(4, 4, 1, 1)
  SG2_FIR_CASE(4, 4, 2, 1)
  SG2_FIR_CASE(2, 2, 1, 1)
  SG2_FIR_CASE(2, 2, 1, 2)
  SG2_FIR_CASE(1, 4, 1, 1)
  SG2_FIR_CASE(1, 4, 2, 1)
  SG2_FIR_CASE(1, 2, 1, 1)
  SG2_FIR_CASE(1, 2, 1, 2)
  SG2_FIR_CASE(4, 1, 1, 1)
  SG2_FIR_CASE(2, 1, 1, 1)
#undef SG2_FIR_CASE
  return &fir_generic<T, L>;
}

}  // namespace

FirBlockFn<float> pick_f32(int lanes, int ny, int nx, int64_t isx,
                           int64_t osx) {
  return lanes == 1 ? pick<float, 1>(ny, nx, isx, osx)
                    : pick<float, kFirLanes>(ny, nx, isx, osx);
}
FirBlockFn<double> pick_f64(int lanes, int ny, int nx, int64_t isx,
                            int64_t osx) {
  return lanes == 1 ? pick<double, 1>(ny, nx, isx, osx)
                    : pick<double, kFirLanes>(ny, nx, isx, osx);
}

}  // namespace SG2_FIR_ISA
}  // namespace cpu_impl
}  // namespace sg2
