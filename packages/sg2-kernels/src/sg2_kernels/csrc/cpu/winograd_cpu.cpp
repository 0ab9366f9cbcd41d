// Entry points of the CPU Winograd tile transforms (see winograd.h): checks,
// the split of tile rows over threads, and the choice of instruction set.
#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

#include <algorithm>
#include <vector>

#include <cstdint>

#include "isa.h"
#include "winograd.h"

namespace sg2 {
namespace cpu_impl {

namespace isa_baseline {
WinogradInFn pick_input(int up);
WinogradOutFn pick_output(int up);
}  // namespace isa_baseline
#if SG2_HAVE_AVX2_BUILD
namespace isa_avx2 {
WinogradInFn pick_input(int up);
WinogradOutFn pick_output(int up);
}  // namespace isa_avx2
#endif

WinogradInFn pick_winograd_input(int up) {
#if SG2_HAVE_AVX2_BUILD
  if (use_avx2_kernels()) return isa_avx2::pick_input(up);
#endif
  return isa_baseline::pick_input(up);
}

WinogradOutFn pick_winograd_output(int up) {
#if SG2_HAVE_AVX2_BUILD
  if (use_avx2_kernels()) return isa_avx2::pick_output(up);
#endif
  return isa_baseline::pick_output(up);
}

namespace {

void check_f32(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat &&
                  t.is_contiguous(),
              "winograd_conv3x3: ", name,
              " must be a contiguous float32 CPU tensor");
}

void check_scale(const at::Tensor& s, int64_t n, int64_t c, const char* name) {
  if (s.numel() == 0) return;
  check_f32(s, name);
  TORCH_CHECK(s.dim() == 2 && s.size(0) == n && s.size(1) == c,
              "winograd_conv3x3: ", name, " must be [", n, ", ", c, "], got ",
              s.sizes());
}

// The transformed tiles of one chunk take at most this much memory each
// (input and GEMM result), so they stay in the last-level cache; the buffers
// are kept per thread, since fresh large allocations cost page faults that
// were measured to take as long as the transforms.
constexpr int64_t kChunkBytes = int64_t{32} << 20;

float* workspace(std::vector<float>& buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(size);
  return buffer.data();
}

// The per-point products M = V @ U over a chunk of `tiles` tiles. up = 2:
// one GEMM per group of points that share a weight (WinogradUp6x2::slot).
void gemms(float* v, float* m, const at::Tensor& u, int64_t up, int64_t tiles,
           int64_t C, int64_t O, const at::TensorOptions& options) {
  auto group = [&](int64_t first_slot, int64_t count, int64_t stacked,
                   int64_t first_weight) {
    at::Tensor vt = at::from_blob(v + first_slot * tiles * C,
                                  {count, stacked * tiles, C}, options);
    at::Tensor mt = at::from_blob(m + first_slot * tiles * O,
                                  {count, stacked * tiles, O}, options);
    at::bmm_out(mt, vt, u.narrow(0, first_weight, count));
  };
  if (up == 1) {
    group(0, 64, 1, 0);
    return;
  }
  group(0, 49, 1, 0);     // even-even
  group(49, 7, 6, 49);    // even row, its 6 odd columns
  group(91, 7, 6, 56);    // even column, its 6 odd rows
  group(133, 1, 36, 63);  // odd-odd
}

}  // namespace

at::Tensor winograd_conv3x3(const at::Tensor& x, const at::Tensor& u,
                            const at::Tensor& in_scale,
                            const at::Tensor& out_scale, int64_t up,
                            int64_t out_h, int64_t out_w,
                            const at::Tensor& out_buffer) {
  check_f32(x, "x");
  check_f32(u, "u");
  TORCH_CHECK(up == 1 || up == 2, "winograd_conv3x3: up must be 1 or 2, got ", up);
  const int P = up == 1 ? WinogradF6x3::P : WinogradUp6x2::P;
  const int S = up == 1 ? WinogradF6x3::S : WinogradUp6x2::S;
  constexpr int64_t step = 6, pad = 1;  // both kinds: tiles every 6 input pixels, from -1
  WinogradInFn in_fn = pick_winograd_input(static_cast<int>(up));
  WinogradOutFn out_fn = pick_winograd_output(static_cast<int>(up));
  TORCH_CHECK(x.dim() == 4 && x.size(1) % kWinogradLanes == 0,
              "winograd_conv3x3: x must be [N, C, H, W] with C a multiple of ",
              kWinogradLanes, ", got ", x.sizes());
  const int64_t N = x.size(0), C = x.size(1);
  TORCH_CHECK(u.dim() == 3 && u.size(0) == 64 && u.size(1) == C &&
                  u.size(2) % kWinogradLanes == 0,
              "winograd_conv3x3: u must be [64, ", C,
              ", O] with O a multiple of ", kWinogradLanes, ", got ",
              u.sizes());
  const int64_t O = u.size(2);
  check_scale(in_scale, N, C, "in_scale");
  check_scale(out_scale, N, O, "out_scale");
  TORCH_CHECK(out_h > 0 && out_w > 0,
              "winograd_conv3x3: the output size must be positive");
  const int64_t tiles_h = (out_h + S - 1) / S, tiles_w = (out_w + S - 1) / S;
  const int64_t rows = N * tiles_h;
  const int64_t row_bytes = tiles_w * P * P * std::max(C, O) * 4;
  // equal chunks: a small last one would make its GEMMs slow
  const int64_t n_chunks = (rows + std::max<int64_t>(1, kChunkBytes / row_bytes) - 1) /
                           std::max<int64_t>(1, kChunkBytes / row_bytes);
  const int64_t chunk = (rows + n_chunks - 1) / n_chunks;

  at::Tensor y;
  if (out_buffer.numel() == 0) {
    y = at::empty({N, O, out_h, out_w}, x.options());
  } else {
    check_f32(out_buffer, "out");
    TORCH_CHECK(out_buffer.sizes() == at::IntArrayRef({N, O, out_h, out_w}),
                "winograd_conv3x3: out must be [", N, ", ", O, ", ", out_h, ", ",
                out_w, "], got ", out_buffer.sizes());
    y = out_buffer;
  }
  thread_local std::vector<float> v_buffer, m_buffer;
  float* v = workspace(v_buffer, chunk * tiles_w * P * P * C);
  float* m = workspace(m_buffer, chunk * tiles_w * P * P * O);
  WinogradInArgs in{x.data_ptr<float>(),
                    in_scale.numel() ? in_scale.data_ptr<float>() : nullptr,
                    v, N, C, x.size(2), x.size(3), step,
                    pad, pad, tiles_h, tiles_w, 0, 0};
  WinogradOutArgs out{m, out_scale.numel() ? out_scale.data_ptr<float>() : nullptr,
                      y.data_ptr<float>(), N, O, out_h,
                      out_w, tiles_h, tiles_w, 0, 0};
  for (int64_t first = 0; first < rows; first += chunk) {
    const int64_t last = std::min(rows, first + chunk);
    const int64_t tiles = (last - first) * tiles_w;
    in.first_row = out.first_row = first;
    in.plane = tiles * C;
    out.plane = tiles * O;
    at::parallel_for(first, last, 1,
                     [&](int64_t r0, int64_t r1) { in_fn(in, r0, r1); });
    gemms(v, m, u, up, tiles, C, O, x.options());
    at::parallel_for(first, last, 1,
                     [&](int64_t r0, int64_t r1) { out_fn(out, r0, r1); });
  }
  return y;
}

}  // namespace cpu_impl
}  // namespace sg2
