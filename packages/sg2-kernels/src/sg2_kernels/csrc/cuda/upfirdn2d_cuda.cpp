// ATen-level CUDA upfirdn2d: checks, layout, allocation, dtype dispatch; the
// kernel itself is in upfirdn2d_kernel.cu.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../common/checks.h"
#include "../common/sg2_ops.h"
#include "launchers.h"

namespace sg2 {
namespace cuda_impl {

at::Tensor upfirdn2d(const at::Tensor& x_in, const at::Tensor& f_in,
                     int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                     int64_t padx0, int64_t padx1, int64_t pady0,
                     int64_t pady1) {
  const UpFirDnSize s =
      check_upfirdn2d(x_in, f_in, upx, upy, downx, downy, padx0, padx1, pady0,
                      pady1, at::kCUDA);
  const c10::cuda::CUDAGuard device_guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor f = f_in.contiguous();
  at::Tensor y = at::empty({x.size(0), x.size(1), s.out_h, s.out_w},
                           x.options().memory_format(at::MemoryFormat::Contiguous));
  if (y.numel() == 0) return y;
  const UpFirDnArgs a{s.planes, s.H,   s.W,   s.fh,  s.fw,  s.out_h, s.out_w,
                      upx,      upy,   downx, downy, padx0, pady0};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "sg2_upfirdn2d_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        launch_upfirdn2d<scalar_t>(x.const_data_ptr<scalar_t>(),
                                   f.const_data_ptr<acc_t>(),
                                   y.mutable_data_ptr<scalar_t>(), a, stream);
      });
  return y;
}

}  // namespace cuda_impl
}  // namespace sg2
