// fir_block kernels compiled for AVX2 + FMA (8 floats per instruction); see
// isa.h.
#include <cstdint>

#include "fir_block.h"
#include "isa.h"

#if SG2_HAVE_AVX2_BUILD
SG2_AVX2_BEGIN
#define SG2_FIR_ISA isa_avx2
#include "fir_block_impl.h"
SG2_AVX2_END
#endif
