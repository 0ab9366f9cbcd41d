"""The registry entries in pyproject.toml build working methods through sg2_core.create_method."""

import tomllib
from importlib import import_module
from pathlib import Path

import pytest
import torch

from inv_optim._common import StepInfo
from inv_optim.progress import ProgressBar
from sg2_core import Inversion, create_method

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
ENTRIES = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]["sg2_toolkit.methods"]


def test_declares_the_three_methods():
    assert {"sg2-w", "sg2-w+", "pti"} <= set(ENTRIES)


# The collab entries need a trained network file: tests/test_collab.py builds them.
@pytest.mark.parametrize("name", sorted(n for n in ENTRIES if not n.startswith("collab")))
def test_each_entry_builds_and_inverts(generator, targets, mse_distance, name):
    module, attribute = ENTRIES[name].split(":")
    factory = getattr(import_module(module), attribute)
    options = dict(distance=mse_distance, steps=2, seed=1)
    if name == "pti":
        options["pivot_options"] = dict(steps=2, w_avg_samples=50)
    else:
        options["w_avg_samples"] = 50
    method = factory(generator=generator, **options)
    assert method.name == name and method.space in ("w", "w+")
    inv = method(targets[:2])
    assert isinstance(inv, Inversion) and inv.space == method.space and len(inv) == 2
    assert inv.extras["distance"].shape == (2,) and inv.extras["steps"].shape == (2,)


def test_create_method_finds_them_when_installed(generator, mse_distance):
    method = create_method("sg2-w+", generator=generator, distance=mse_distance, steps=2)
    assert method.space == "w+"


def test_progress_bar_callback(capsys):
    bar = ProgressBar(file=None, disable=True)
    for stage in ("pivot", "pivot", "tune"):
        bar(StepInfo(0, 2, torch.tensor([0.5]), torch.tensor([0.5]), torch.tensor([True]), stage))
    assert bar.stage == "tune"
    bar.close()
    assert bar.bar is None
