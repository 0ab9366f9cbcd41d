// Chooses the fir_block kernels for the running CPU: AVX2 + FMA when the CPU
// has them (x86 with GCC or Clang), else the baseline build; and defines
// use_avx2_kernels() (isa.h), which the Winograd kernels ask too. Setting
// SG2_KERNELS_CPU_ISA=baseline forces the baseline kernels (for testing).
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "fir_block.h"
#include "isa.h"

namespace sg2 {
namespace cpu_impl {

#define SG2_DECLARE_PICKERS(ISA)                                     \
  namespace ISA {                                                    \
  FirBlockFn<float> pick_f32(int lanes, int ny, int nx, int64_t isx,   \
                             int64_t osx);                              \
  FirBlockFn<double> pick_f64(int lanes, int ny, int nx, int64_t isx,  \
                              int64_t osx);                             \
  }
SG2_DECLARE_PICKERS(isa_baseline)
#if SG2_HAVE_AVX2_BUILD
SG2_DECLARE_PICKERS(isa_avx2)
#endif
#undef SG2_DECLARE_PICKERS

bool use_avx2_kernels() {
#if SG2_HAVE_AVX2_BUILD
  static const bool ok = [] {
    const char* env = std::getenv("SG2_KERNELS_CPU_ISA");
    if (env != nullptr && std::strcmp(env, "baseline") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
#else
  return false;
#endif
}

template <>
FirBlockFn<float> pick_fir_block<float>(int lanes, int ny, int nx, int64_t isx,
                                        int64_t osx) {
#if SG2_HAVE_AVX2_BUILD
  if (use_avx2_kernels()) return isa_avx2::pick_f32(lanes, ny, nx, isx, osx);
#endif
  return isa_baseline::pick_f32(lanes, ny, nx, isx, osx);
}

template <>
FirBlockFn<double> pick_fir_block<double>(int lanes, int ny, int nx, int64_t isx,
                                          int64_t osx) {
#if SG2_HAVE_AVX2_BUILD
  if (use_avx2_kernels()) return isa_avx2::pick_f64(lanes, ny, nx, isx, osx);
#endif
  return isa_baseline::pick_f64(lanes, ny, nx, isx, osx);
}

}  // namespace cpu_impl
}  // namespace sg2
