// Winograd tile transforms for the baseline instruction set of the compiler flags.
#include <cstdint>

#include "winograd.h"

#define SG2_WINOGRAD_ISA isa_baseline
#include "winograd_impl.h"
