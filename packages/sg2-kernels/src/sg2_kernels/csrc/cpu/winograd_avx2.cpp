// Winograd tile transforms compiled for AVX2 + FMA; only called after the
// runtime CPU check in winograd_cpu.cpp.
#include <cstdint>

#include "winograd.h"

#if (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define SG2_WINOGRAD_ISA isa_avx2
#define SG2_WINOGRAD_AVX2 1
#include "winograd_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif
