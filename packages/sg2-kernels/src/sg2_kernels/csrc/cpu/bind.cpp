// Module sg2_kernels._cpp: CPU kernels.
#include "../common/bind_ops.h"
#include "../common/sg2_ops.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "sg2_kernels CPU kernels: upfirdn2d and fused bias + activation.";
  SG2_BIND_OPS(m, sg2::cpu_impl);
}
