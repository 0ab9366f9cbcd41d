// Index arithmetic of upfirdn2d along one axis, shared by the CPU and CUDA
// kernels. Output sample o reads the padded, zero-inserted signal at
// o * down + k for taps k in [0, K). Only taps with (o * down + k - pad0) a
// multiple of `up` hit a real input sample; they are k0, k0 + up, ... and
// read consecutive input indices i0, i0 + 1, ... (may lie outside the input).
#pragma once

#include "hd.h"

namespace sg2 {

template <typename index_t>
struct Phase {
  index_t k0;  // first tap that hits a real sample (0 <= k0 < up)
  index_t n;   // number of such taps: k0, k0 + up, ... < K
  index_t i0;  // input index read by tap k0
};

template <typename index_t>
SG2_HD Phase<index_t> phase_of(index_t o, index_t up, index_t down,
                               index_t pad0, index_t K) {
  const index_t s = o * down - pad0;  // zero-inserted coordinate of tap 0
  index_t k0 = (-s) % up;
  if (k0 < 0) k0 += up;
  Phase<index_t> ph;
  ph.k0 = k0;
  ph.n = k0 < K ? (K - k0 + up - 1) / up : 0;
  ph.i0 = (s + k0) / up;  // exact: s + k0 is a multiple of up
  return ph;
}

}  // namespace sg2
