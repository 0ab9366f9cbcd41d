// ATen-level CUDA bias_act / bias_act_grad: checks, layout, allocation,
// dtype dispatch; the kernels are in bias_act_kernel.cu.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../common/checks.h"
#include "../common/sg2_ops.h"
#include "launchers.h"

namespace sg2 {
namespace cuda_impl {
namespace {

BiasActArgs args(const BiasActShape& s, int64_t act, int64_t order,
                 double alpha, double gain, double clamp) {
  return BiasActArgs{s.numel, s.C,   s.inner, int(act),
                     int(order), alpha, gain, clamp};
}

}  // namespace

at::Tensor bias_act(const at::Tensor& x_in, const at::Tensor& b_in,
                    int64_t dim, int64_t act, double alpha, double gain,
                    double clamp) {
  const BiasActShape s = check_bias_act(x_in, b_in, dim, act, at::kCUDA);
  const c10::cuda::CUDAGuard device_guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  if (s.numel == 0) return y;
  const at::Tensor b = bias_for(b_in, x, s);
  const BiasActArgs a = args(s, act, 1, alpha, gain, clamp);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "sg2_bias_act_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        launch_bias_act<scalar_t>(
            x.const_data_ptr<scalar_t>(),
            s.has_bias ? b.const_data_ptr<acc_t>() : nullptr,
            y.mutable_data_ptr<scalar_t>(), a, stream);
      });
  return y;
}

at::Tensor bias_act_grad(const at::Tensor& g_in, const at::Tensor& x_in,
                         const at::Tensor& b_in, int64_t dim, int64_t act,
                         double alpha, double gain, double clamp,
                         int64_t order) {
  const BiasActShape s = check_bias_act(x_in, b_in, dim, act, at::kCUDA);
  check_bias_act_grad(g_in, x_in, order);
  const c10::cuda::CUDAGuard device_guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor g = g_in.contiguous();
  at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
  if (s.numel == 0) return dx;
  const at::Tensor b = bias_for(b_in, x, s);
  const BiasActArgs a = args(s, act, order, alpha, gain, clamp);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "sg2_bias_act_grad_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        launch_bias_act_grad<scalar_t>(
            g.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
            s.has_bias ? b.const_data_ptr<acc_t>() : nullptr,
            dx.mutable_data_ptr<scalar_t>(), a, stream);
      });
  return dx;
}

}  // namespace cuda_impl
}  // namespace sg2
