// Module sg2_kernels._cpp: CPU kernels.
#include "../common/bind_ops.h"
#include "../common/sg2_ops.h"

namespace sg2 {
namespace cpu_impl {
// winograd_cpu.cpp
at::Tensor winograd_conv3x3(const at::Tensor& x, const at::Tensor& u,
                            const at::Tensor& in_scale,
                            const at::Tensor& out_scale, int64_t up,
                            int64_t out_h, int64_t out_w,
                            const at::Tensor& out_buffer);
// noise_bias_lrelu_cpu.cpp
void noise_bias_lrelu_(at::Tensor& x, const at::Tensor& noise,
                       const at::Tensor& b, double alpha, double gain,
                       double clamp);
}  // namespace cpu_impl
}  // namespace sg2

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  namespace py = pybind11;
  using release = py::call_guard<py::gil_scoped_release>;
  m.doc() = "sg2_kernels CPU kernels: upfirdn2d, fused bias + activation, "
            "Winograd convolution, in-place noise + bias + lrelu.";
  SG2_BIND_OPS(m, sg2::cpu_impl);
  m.def("winograd_conv3x3", &sg2::cpu_impl::winograd_conv3x3, release(),
        "winograd_conv3x3(x, u, in_scale, out_scale, up, out_h, out_w, out) -> "
        "[N, O, out_h, out_w]: the 3x3 convolution (up=1) or stride-2 "
        "transposed convolution (up=2) of x * in_scale with the transformed "
        "weight u, times out_scale, written to out unless it is empty; empty "
        "scales are 1.",
        py::arg("x"), py::arg("u"), py::arg("in_scale"), py::arg("out_scale"),
        py::arg("up"), py::arg("out_h"), py::arg("out_w"), py::arg("out"));
  m.def("noise_bias_lrelu_", &sg2::cpu_impl::noise_bias_lrelu_, release(),
        "noise_bias_lrelu_(x, noise, b, alpha, gain, clamp): in place, x = "
        "clamp(gain * lrelu(x + noise + b)); noise empty, [H, W] or "
        "[N, 1, H, W]; clamp < 0 disables the clamp.",
        py::arg("x"), py::arg("noise"), py::arg("b"), py::arg("alpha"),
        py::arg("gain"), py::arg("clamp"));
}
