// fir_block kernels compiled for AVX2 + FMA (8 floats per instruction). Only
// called after a runtime CPU check (fir_block_dispatch.cpp), so the package
// still runs on x86-64 CPUs without AVX2.
#include <cstdint>

#include "fir_block.h"

#if (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define SG2_FIR_ISA isa_avx2
#include "fir_block_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif
