"""Every registered inv-optim method keeps the method contract (sg2_core.testing.check_method)."""

import tomllib
from pathlib import Path

import pytest

from sg2_core.testing import check_method

ENTRY_POINTS = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"][
    "entry-points"
]["sg2_toolkit.methods"]

# Cheap options. The tolerances are max |render difference| between a batch and its images one at a time:
# Adam turns the rounding differences of batched GEMMs into lr-sized steps (measured: W+ projection 2.2e-4
# after 3 steps; PTI see test_pti), the feed-forward methods differ by float rounding only.
CASES = {
    "sg2-w": ({"steps": 3, "w_avg_samples": 64}, 1e-3),
    "sg2-w+": ({"steps": 3, "w_avg_samples": 64}, 1e-3),
    "pti": ({"steps": 3, "lr": 3e-3, "pivot_options": {"steps": 2, "w_avg_samples": 64}}, 1e-2),
    "collab": ({}, 1e-4),
    "collab+refine": ({"refine_steps": 3}, 1e-4),
}


def test_every_entry_point_is_checked():
    assert set(CASES) == set(ENTRY_POINTS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_method_keeps_the_contract(name, request):
    from sg2_core import demo

    generator = demo.load_generator().requires_grad_(False)
    images = demo.load_test_images()[0][:3]
    options, tolerance = CASES[name]
    check_method(name, generator, images, options=options, batch_tolerance=tolerance)
