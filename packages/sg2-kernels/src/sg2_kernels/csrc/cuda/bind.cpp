// Module sg2_kernels._cuda: CUDA kernels.
#include "../common/bind_ops.h"
#include "../common/sg2_ops.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "sg2_kernels CUDA kernels: upfirdn2d and fused bias + activation.";
  SG2_BIND_OPS(m, sg2::cuda_impl);
}
