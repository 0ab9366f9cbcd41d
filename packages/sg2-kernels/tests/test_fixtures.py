"""Every implementation equals NVIDIA's reference ops (shared/fixtures/sg2/ops.pt): values, first- and
second-order gradients, within the fixture README's tolerances."""

import torch

from sg2_kernels import bias_act, upfirdn2d
from sg2_kernels.testing import assert_close_rel

FIRST_ORDER, SECOND_ORDER = 1e-5, 1e-4


def _grads(op, x, b, dy):
    """``y``, ``dx`` (and ``db``), and the gradients of ``S = sum(dx²) + sum(db²)`` w.r.t. dy, x, b."""
    inputs = [t for t in (x, b) if t is not None]
    y = op(x, b)
    g = dy.clone().requires_grad_(True)
    first = torch.autograd.grad(y, inputs, grad_outputs=g, create_graph=True)
    s = sum(d.square().sum() for d in first)
    second = torch.autograd.grad(s, [g, *inputs], allow_unused=True, materialize_grads=True)
    return y, first, second


def test_upfirdn2d_matches_reference(impl_device, ops_fixture):
    impl, device = impl_device
    data = ops_fixture["upfirdn2d"]
    checked = 0
    for case in data["cases"]:
        what = f"{case['kernel']} up={case['up']} down={case['down']} pad={case['padding']} flip={case['flip_filter']}"
        x = data["x"].to(device).requires_grad_(True)

        def op(x, _b):
            return upfirdn2d(
                x,
                case["f"].to(device),
                case["up"],
                case["down"],
                case["padding"],
                case["flip_filter"],
                case["gain"],
                impl=impl,
            )

        y, (dx,), (ggy, _) = _grads(op, x, None, case["dy"].to(device))
        assert list(y.shape) == case["out_shape"], what
        assert_close_rel(y, case["y"], FIRST_ORDER, f"y {what}")
        assert_close_rel(dx, case["dx"], FIRST_ORDER, f"dx {what}")
        assert_close_rel(ggy, case["ggy"], SECOND_ORDER, f"ggy {what}")
        checked += 1
    assert checked == 86


def test_bias_act_matches_reference(impl_device, ops_fixture):
    impl, device = impl_device
    cases = ops_fixture["bias_act"]["cases"]
    for case in cases:
        what = case["name"]
        x = case["x"].to(device).requires_grad_(True)
        b = None if case["b"] is None else case["b"].to(device).requires_grad_(True)

        def op(x, b):
            return bias_act(
                x, b, act=case["act"], alpha=case["alpha"], gain=case["gain"], clamp=case["clamp"], impl=impl
            )

        y, first, second = _grads(op, x, b, case["dy"].to(device))
        assert_close_rel(y, case["y"], FIRST_ORDER, f"y {what}")
        assert_close_rel(first[0], case["dx"], FIRST_ORDER, f"dx {what}")
        assert_close_rel(second[0], case["dS_ddy"], SECOND_ORDER, f"dS_ddy {what}")
        # the stored second derivatives w.r.t. x and b are exactly zero (piecewise-linear activations)
        assert torch.equal(case["dS_dx"], torch.zeros_like(case["dS_dx"]))
        assert second[1].abs().max().item() == 0.0, what
        if b is not None:
            assert_close_rel(first[1], case["db"], FIRST_ORDER, f"db {what}")
            assert second[2].abs().max().item() == 0.0, what
    assert len(cases) == 8
