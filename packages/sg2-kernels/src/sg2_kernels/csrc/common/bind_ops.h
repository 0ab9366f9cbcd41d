// Python bindings of the three ops, shared by cpu/bind.cpp and cuda/bind.cpp,
// the only files that see pybind11. They include the pybind11 type casters
// for at::Tensor rather than all of <torch/extension.h>: same bindings,
// about 20 s less compile time per extension.
// NS is the implementation namespace. The GIL is released while an op runs.
#pragma once

#include <torch/csrc/utils/pybind.h>

#define SG2_BIND_OPS(m, NS)                                                    \
  do {                                                                         \
    namespace py = pybind11;                                                   \
    using release = py::call_guard<py::gil_scoped_release>;                    \
    m.def("upfirdn2d", &NS::upfirdn2d, release(),                              \
          "upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, "      \
          "pady1): zero-insert upsample, pad (negative crops), "               \
          "cross-correlate with f (not flipped), keep every down-th sample.",  \
          py::arg("x"), py::arg("f"), py::arg("upx"), py::arg("upy"),          \
          py::arg("downx"), py::arg("downy"), py::arg("padx0"),                \
          py::arg("padx1"), py::arg("pady0"), py::arg("pady1"));               \
    m.def("bias_act", &NS::bias_act, release(),                                \
          "bias_act(x, b, dim, act, alpha, gain, clamp): clamp(gain * "        \
          "act(x + b), -clamp, clamp); b broadcast along dim or empty; "       \
          "clamp < 0 disables the clamp.",                                     \
          py::arg("x"), py::arg("b"), py::arg("dim"), py::arg("act"),          \
          py::arg("alpha"), py::arg("gain"), py::arg("clamp"));                \
    m.def("bias_act_grad", &NS::bias_act_grad, release(),                      \
          "bias_act_grad(g, x, b, dim, act, alpha, gain, clamp, order): g * "  \
          "gain * act^(order)(x + b) * [|gain * act(x + b)| <= clamp].",       \
          py::arg("g"), py::arg("x"), py::arg("b"), py::arg("dim"),            \
          py::arg("act"), py::arg("alpha"), py::arg("gain"),                   \
          py::arg("clamp"), py::arg("order"));                                 \
  } while (0)
