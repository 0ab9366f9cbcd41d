// The AVX2 + FMA builds of the CPU kernels. Files *_avx2.cpp compile their
// kernels between SG2_AVX2_BEGIN and SG2_AVX2_END (GCC or Clang on x86); the
// dispatchers call them only when use_avx2_kernels() says the CPU has AVX2,
// so the package still runs on x86-64 CPUs without it.
#pragma once

#if (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#define SG2_HAVE_AVX2_BUILD 1
#if defined(__clang__)
#define SG2_AVX2_BEGIN                                                      \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), " \
          "apply_to = function)")
#define SG2_AVX2_END _Pragma("clang attribute pop")
#else
#define SG2_AVX2_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define SG2_AVX2_END _Pragma("GCC pop_options")
#endif
#else
#define SG2_HAVE_AVX2_BUILD 0
#endif

namespace sg2 {
namespace cpu_impl {

// True when the CPU has AVX2 and FMA and SG2_KERNELS_CPU_ISA is not
// "baseline" (which forces the baseline kernels, for testing).
bool use_avx2_kernels();

}  // namespace cpu_impl
}  // namespace sg2
