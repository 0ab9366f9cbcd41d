// fir_block kernels for the baseline instruction set of the compiler flags.
#include <cstdint>

#include "fir_block.h"

#define SG2_FIR_ISA isa_baseline
#include "fir_block_impl.h"
