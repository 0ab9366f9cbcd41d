// In-place x = clamp(gain * lrelu(x + noise + b)) for StyleGAN2's synthesis
// layers at inference: one pass over the largest maps instead of four, and
// no new buffer (a fresh one costs page faults as long as the pass).
#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <limits>

namespace sg2 {
namespace cpu_impl {
namespace {

// Branch-free, so that the compiler vectorises it (with -fno-trapping-math
// the selects become blends).
inline float lrelu_clamp(float v, float a, float g, float c) {
  v = (v > 0.f ? v : v * a) * g;
  v = v < -c ? -c : v;
  return v > c ? c : v;
}

void apply(float* __restrict p, const float* __restrict q, int64_t n, float b,
           float a, float g, float c) {
  if (q != nullptr) {
    for (int64_t i = 0; i < n; ++i) p[i] = lrelu_clamp(p[i] + q[i] + b, a, g, c);
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = lrelu_clamp(p[i] + b, a, g, c);
  }
}

}  // namespace

void noise_bias_lrelu_(at::Tensor& x, const at::Tensor& noise,
                       const at::Tensor& b, double alpha, double gain,
                       double clamp) {
  const char* op = "noise_bias_lrelu_";
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat &&
                  x.is_contiguous() && x.dim() == 4,
              op, ": x must be a contiguous float32 CPU tensor [N, C, H, W]");
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  TORCH_CHECK(b.device().is_cpu() && b.scalar_type() == at::kFloat &&
                  b.is_contiguous() && b.numel() == C,
              op, ": b must be a contiguous float32 CPU tensor of ", C,
              " values");
  // noise: none, one [H, W] map for every sample, or one per sample
  int64_t noise_stride = 0;
  if (noise.numel() != 0) {
    TORCH_CHECK(noise.device().is_cpu() && noise.scalar_type() == at::kFloat &&
                    noise.is_contiguous() &&
                    (noise.numel() == HW || noise.numel() == N * HW),
                op, ": noise must be a contiguous float32 CPU tensor of ", HW,
                " or ", N * HW, " values");
    noise_stride = noise.numel() == HW ? 0 : HW;
  }
  float* data = x.data_ptr<float>();
  const float* nz = noise.numel() ? noise.data_ptr<float>() : nullptr;
  const float* bias = b.data_ptr<float>();
  const float a = static_cast<float>(alpha), g = static_cast<float>(gain);
  const float c = clamp < 0 ? std::numeric_limits<float>::infinity()
                            : static_cast<float>(clamp);
  at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float* q = nz != nullptr ? nz + (plane / C) * noise_stride : nullptr;
      apply(data + plane * HW, q, HW, bias[plane % C], a, g, c);
    }
  });
}

}  // namespace cpu_impl
}  // namespace sg2
