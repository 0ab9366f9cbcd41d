// Winograd tile transforms compiled for AVX2 + FMA; see isa.h.
#include <cstdint>

#include "isa.h"
#include "winograd.h"

#if SG2_HAVE_AVX2_BUILD
#include <immintrin.h>

SG2_AVX2_BEGIN
#define SG2_WINOGRAD_ISA isa_avx2
#define SG2_WINOGRAD_AVX2 1
#include "winograd_impl.h"
SG2_AVX2_END
#endif
