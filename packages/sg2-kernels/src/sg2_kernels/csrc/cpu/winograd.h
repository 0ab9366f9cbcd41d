// Tile transforms of the CPU Winograd convolution (sg2_kernels.winograd).
//
// Input: every tile of L x L input pixels (zero outside the image) becomes
// the P x P values B d B^T, written as V[p * P + q, tile, channel] so that
// the per-point matrix products are one batched GEMM. Output: every tile of
// P x P GEMM results becomes the S x S pixels A m A^T of the output image.
// Both work on a chunk of tile rows (rows of the flattened (sample, tile
// row) index) whose tiles are numbered from the chunk's first row.
// An optional per-(sample, channel) scale multiplies the input (styles) or
// the output (demodulation). Channels go 8 at a time through SIMD lanes;
// the kernels are compiled twice (baseline and AVX2 + FMA) like fir_block.
#pragma once

#include <cstdint>

namespace sg2 {
namespace cpu_impl {

constexpr int kWinogradLanes = 8;

struct WinogradInArgs {
  const float* x;      // [N, C, H, W]
  const float* scale;  // [N, C] or nullptr
  const float* b;      // [P, L], row-major
  float* v;            // [P * P, chunk tiles, C]
  int64_t N, C, H, W, step, pad_top, pad_left, tiles_h, tiles_w;
  int64_t first_row, plane;  // the chunk's first tile row; v's point stride
};

struct WinogradOutArgs {
  const float* m;      // [P * P, chunk tiles, O]
  const float* scale;  // [N, O] or nullptr
  const float* a;      // [S, P], row-major
  float* y;            // [N, O, H, W]; tile (ty, tx) covers rows ty * S...
  int64_t N, O, H, W, tiles_h, tiles_w;
  int64_t first_row, plane;  // as in WinogradInArgs
};

// Each function handles the tile rows [begin, end) of the chunk. Null when
// (L, P) or (P, S) is not compiled in.
using WinogradInFn = void (*)(const WinogradInArgs&, int64_t begin, int64_t end);
using WinogradOutFn = void (*)(const WinogradOutArgs&, int64_t begin, int64_t end);

WinogradInFn pick_winograd_input(int L, int P);
WinogradOutFn pick_winograd_output(int P, int S);

// AVX2 + FMA kernels are used when the CPU has them (and
// SG2_KERNELS_CPU_ISA is not "baseline"); see fir_block_dispatch.cpp.
bool use_avx2_kernels();

}  // namespace cpu_impl
}  // namespace sg2
