// Module sg2_kernels._cpp: CPU kernels.
#include "../common/bind_ops.h"
#include "../common/sg2_ops.h"

namespace sg2 {
namespace cpu_impl {
// winograd_cpu.cpp
at::Tensor winograd_conv3x3(const at::Tensor& x, const at::Tensor& u,
                            const at::Tensor& in_scale,
                            const at::Tensor& out_scale, const at::Tensor& a,
                            const at::Tensor& b, int64_t step, int64_t pad,
                            int64_t out_h, int64_t out_w);
}  // namespace cpu_impl
}  // namespace sg2

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  namespace py = pybind11;
  using release = py::call_guard<py::gil_scoped_release>;
  m.doc() = "sg2_kernels CPU kernels: upfirdn2d, fused bias + activation, "
            "Winograd tile transforms.";
  SG2_BIND_OPS(m, sg2::cpu_impl);
  m.def("winograd_conv3x3", &sg2::cpu_impl::winograd_conv3x3, release(),
        "winograd_conv3x3(x, u, in_scale, out_scale, a, b, step, pad, out_h, "
        "out_w) -> [N, O, out_h, out_w]: a [(b d b^T) @ u] a^T over the "
        "L x L tiles d of x * in_scale (taken every step pixels from -pad), "
        "times out_scale; empty scales are 1.",
        py::arg("x"), py::arg("u"), py::arg("in_scale"), py::arg("out_scale"),
        py::arg("a"), py::arg("b"), py::arg("step"), py::arg("pad"),
        py::arg("out_h"), py::arg("out_w"));
}
