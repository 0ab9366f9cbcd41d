// Tile transforms of the CPU Winograd convolution (sg2_kernels.winograd).
//
// Input: every tile of L x L input pixels (zero outside the image) becomes
// the P x P values B d B^T (B and A: the Kind's constant matrices), written as V[p * P + q, tile, channel] so that
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
  float* v;            // [P * P, chunk tiles, C]
  int64_t N, C, H, W, step, pad_top, pad_left, tiles_h, tiles_w;
  int64_t first_row, plane;  // the chunk's first tile row; v's point stride
};

struct WinogradOutArgs {
  const float* m;      // [P * P, chunk tiles, O]
  const float* scale;  // [N, O] or nullptr
  float* y;            // [N, O, H, W]; tile (ty, tx) covers rows ty * S...
  int64_t N, O, H, W, tiles_h, tiles_w;
  int64_t first_row, plane;  // as in WinogradInArgs
};

// The two kinds; their matrices equal sg2_kernels.winograd.matrices(up)
// (checked by the tests, which compare against the direct convolution). All
// entries are dyadic, so exact in float. Input tiles start every 6 pixels.
struct WinogradF6x3 {  // up = 1: F(6x6, 3x3)
  static constexpr int L = 8, P = 8, S = 6;
  // where point (p, q) sits in the transformed input and GEMM result
  static constexpr int slot(int p, int q) { return p * P + q; }
  static constexpr float B[8][8] = {
      {-1.0f, 0.0f, 5.25f, 0.0f, -5.25f, 0.0f, 1.0f, 0.0f},
      {0.0f, 1.0f, 1.0f, -4.25f, -4.25f, 1.0f, 1.0f, 0.0f},
      {0.0f, -1.0f, 1.0f, 4.25f, -4.25f, -1.0f, 1.0f, 0.0f},
      {0.0f, 0.5f, 0.25f, -2.5f, -1.25f, 2.0f, 1.0f, 0.0f},
      {0.0f, -0.5f, 0.25f, 2.5f, -1.25f, -2.0f, 1.0f, 0.0f},
      {0.0f, 2.0f, 4.0f, -2.5f, -5.0f, 0.5f, 1.0f, 0.0f},
      {0.0f, -2.0f, 4.0f, 2.5f, -5.0f, -0.5f, 1.0f, 0.0f},
      {0.0f, -1.0f, 0.0f, 5.25f, 0.0f, -5.25f, 0.0f, 1.0f}};
  static constexpr float A[6][8] = {
      {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f},
      {0.0f, 1.0f, -1.0f, 2.0f, -2.0f, 0.5f, -0.5f, 0.0f},
      {0.0f, 1.0f, 1.0f, 4.0f, 4.0f, 0.25f, 0.25f, 0.0f},
      {0.0f, 1.0f, -1.0f, 8.0f, -8.0f, 0.125f, -0.125f, 0.0f},
      {0.0f, 1.0f, 1.0f, 16.0f, 16.0f, 0.0625f, 0.0625f, 0.0f},
      {0.0f, 1.0f, -1.0f, 32.0f, -32.0f, 0.03125f, -0.03125f, 1.0f}};
};

struct WinogradUp6x2 {  // up = 2: the stride-2 transposed 3x3, F(6, 2) + 6
  static constexpr int L = 7, P = 13, S = 12;
  // Points 7-12 of an axis share one weight row (the middle tap), so the
  // points that share a transformed weight are stored together, and each
  // group is one GEMM: 49 even-even points; for each even row p the 6 odd
  // columns; for each even column q the 6 odd rows; the 36 odd-odd points
  // (sg2_kernels.winograd.weight_index numbers the 64 weights the same way).
  static constexpr int slot(int p, int q) {
    return p < 7 ? (q < 7 ? p * 7 + q : 49 + p * 6 + (q - 7))
                 : (q < 7 ? 91 + q * 6 + (p - 7) : 133 + (p - 7) * 6 + (q - 7));
  }
  static constexpr float B[13][7] = {
      {-2.0f, 4.0f, 2.5f, -5.0f, -0.5f, 1.0f, 0.0f},
      {0.0f, 2.0f, -2.0f, -4.5f, 0.5f, 1.0f, 0.0f},
      {0.0f, -2.0f, 6.0f, -3.5f, -1.5f, 1.0f, 0.0f},
      {0.0f, 1.0f, -1.5f, -2.0f, 1.5f, 1.0f, 0.0f},
      {0.0f, -1.0f, 2.5f, 0.0f, -2.5f, 1.0f, 0.0f},
      {0.0f, 4.0f, 0.0f, -5.0f, 0.0f, 1.0f, 0.0f},
      {0.0f, -2.0f, 4.0f, 2.5f, -5.0f, -0.5f, 1.0f},
      {0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f},
      {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f},
      {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f}};
  static constexpr float A[12][13] = {
      {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 1.0f, -1.0f, 2.0f, -2.0f, 0.5f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 1.0f, 1.0f, 4.0f, 4.0f, 0.25f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 1.0f, -1.0f, 8.0f, -8.0f, 0.125f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f},
      {0.0f, 1.0f, 1.0f, 16.0f, 16.0f, 0.0625f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f},
      {0.0f, 1.0f, -1.0f, 32.0f, -32.0f, 0.03125f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
      {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f}};
};

// Each function handles the tile rows [begin, end) of the chunk.
using WinogradInFn = void (*)(const WinogradInArgs&, int64_t begin, int64_t end);
using WinogradOutFn = void (*)(const WinogradOutArgs&, int64_t begin, int64_t end);

// up is 1 or 2.
WinogradInFn pick_winograd_input(int up);
WinogradOutFn pick_winograd_output(int up);

}  // namespace cpu_impl
}  // namespace sg2
