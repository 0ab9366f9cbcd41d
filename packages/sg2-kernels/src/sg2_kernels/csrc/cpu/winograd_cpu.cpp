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

#include "winograd.h"

namespace sg2 {
namespace cpu_impl {

namespace isa_baseline {
WinogradInFn pick_input(int L, int P);
WinogradOutFn pick_output(int P, int S);
}  // namespace isa_baseline
#if (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#define SG2_HAVE_AVX2_WINOGRAD 1
namespace isa_avx2 {
WinogradInFn pick_input(int L, int P);
WinogradOutFn pick_output(int P, int S);
}  // namespace isa_avx2
#endif

WinogradInFn pick_winograd_input(int L, int P) {
#ifdef SG2_HAVE_AVX2_WINOGRAD
  if (use_avx2_kernels()) return isa_avx2::pick_input(L, P);
#endif
  return isa_baseline::pick_input(L, P);
}

WinogradOutFn pick_winograd_output(int P, int S) {
#ifdef SG2_HAVE_AVX2_WINOGRAD
  if (use_avx2_kernels()) return isa_avx2::pick_output(P, S);
#endif
  return isa_baseline::pick_output(P, S);
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
constexpr int64_t kChunkBytes = int64_t{8} << 20;

float* workspace(std::vector<float>& buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(size);
  return buffer.data();
}

}  // namespace

at::Tensor winograd_conv3x3(const at::Tensor& x, const at::Tensor& u,
                            const at::Tensor& in_scale,
                            const at::Tensor& out_scale, const at::Tensor& a,
                            const at::Tensor& b, int64_t step, int64_t pad,
                            int64_t out_h, int64_t out_w) {
  check_f32(x, "x");
  check_f32(u, "u");
  check_f32(a, "a");
  check_f32(b, "b");
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0),
              "winograd_conv3x3: a must be [S, P] and b [P, L]");
  const int S = static_cast<int>(a.size(0)), P = static_cast<int>(a.size(1));
  const int L = static_cast<int>(b.size(1));
  WinogradInFn in_fn = pick_winograd_input(L, P);
  WinogradOutFn out_fn = pick_winograd_output(P, S);
  TORCH_CHECK(in_fn != nullptr && out_fn != nullptr,
              "winograd_conv3x3: no kernels for L=", L, ", P=", P, ", S=", S);
  TORCH_CHECK(x.dim() == 4 && x.size(1) % kWinogradLanes == 0,
              "winograd_conv3x3: x must be [N, C, H, W] with C a multiple of ",
              kWinogradLanes, ", got ", x.sizes());
  const int64_t N = x.size(0), C = x.size(1);
  TORCH_CHECK(u.dim() == 3 && u.size(0) == int64_t{P} * P && u.size(1) == C &&
                  u.size(2) % kWinogradLanes == 0,
              "winograd_conv3x3: u must be [", P * P, ", ", C,
              ", O] with O a multiple of ", kWinogradLanes, ", got ",
              u.sizes());
  const int64_t O = u.size(2);
  check_scale(in_scale, N, C, "in_scale");
  check_scale(out_scale, N, O, "out_scale");
  TORCH_CHECK(step > 0 && out_h > 0 && out_w > 0,
              "winograd_conv3x3: step and output size must be positive");
  const int64_t tiles_h = (out_h + S - 1) / S, tiles_w = (out_w + S - 1) / S;
  const int64_t rows = N * tiles_h;
  const int64_t row_bytes = tiles_w * P * P * std::max(C, O) * 4;
  const int64_t chunk = std::max<int64_t>(1, kChunkBytes / row_bytes);

  at::Tensor y = at::empty({N, O, out_h, out_w}, x.options());
  thread_local std::vector<float> v_buffer, m_buffer;
  float* v = workspace(v_buffer, chunk * tiles_w * P * P * C);
  float* m = workspace(m_buffer, chunk * tiles_w * P * P * O);
  WinogradInArgs in{x.data_ptr<float>(),
                    in_scale.numel() ? in_scale.data_ptr<float>() : nullptr,
                    b.data_ptr<float>(), v, N, C, x.size(2), x.size(3), step,
                    pad, pad, tiles_h, tiles_w, 0, 0};
  WinogradOutArgs out{m, out_scale.numel() ? out_scale.data_ptr<float>() : nullptr,
                      a.data_ptr<float>(), y.data_ptr<float>(), N, O, out_h,
                      out_w, tiles_h, tiles_w, 0, 0};
  for (int64_t first = 0; first < rows; first += chunk) {
    const int64_t last = std::min(rows, first + chunk);
    const int64_t tiles = (last - first) * tiles_w;
    in.first_row = out.first_row = first;
    in.plane = tiles * C;
    out.plane = tiles * O;
    at::parallel_for(first, last, 1,
                     [&](int64_t r0, int64_t r1) { in_fn(in, r0, r1); });
    at::Tensor vt = at::from_blob(v, {int64_t{P} * P, tiles, C}, x.options());
    at::Tensor mt = at::from_blob(m, {int64_t{P} * P, tiles, O}, x.options());
    at::bmm_out(mt, vt, u);
    at::parallel_for(first, last, 1,
                     [&](int64_t r0, int64_t r1) { out_fn(out, r0, r1); });
  }
  return y;
}

}  // namespace cpu_impl
}  // namespace sg2
