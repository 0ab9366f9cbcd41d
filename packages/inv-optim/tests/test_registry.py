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


@pytest.mark.parametrize(
    ("name", "options", "option", "file"),
    [
        ("sg2-w", {}, "distance='lpips-vgg'", "vgg16-397923af.pth"),
        ("sg2-w+", {}, "distance='lpips-vgg'", "vgg16-397923af.pth"),
        ("pti", {}, "distance='lpips-alex'", "alexnet-owt-7be5be79.pth"),
        ("collab+refine", {"allow_untrained": True}, "distance='lpips-vgg'", "vgg16-397923af.pth"),
    ],
)
def test_a_missing_lpips_file_is_refused_at_build_naming_option_file_and_source(
    generator, tmp_path, monkeypatch, name, options, option, file
):
    from sg2_core.methods.weights import MissingWeightsError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub: no torchvision file anywhere
    with pytest.raises(MissingWeightsError) as error:
        create_method(name, generator=generator, **options)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{name}: {option} needs")
    assert f"https://download.pytorch.org/models/{file}" in message and str(tmp_path / "hub") in message


def test_pti_names_its_pivot_option_when_only_the_pivot_file_is_missing(generator, tmp_path, monkeypatch):
    from inv_metrics.lpips_distance import save_random_trunk
    from sg2_core.methods.weights import MissingWeightsError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    save_random_trunk("alex", tmp_path / "hub" / "checkpoints")  # the tuning distance's file only
    with pytest.raises(MissingWeightsError, match=r"^pti: pivot_options\.distance='lpips-vgg' needs .*vgg16"):
        create_method("pti", generator=generator)


def test_collab_without_refinement_needs_no_distance_file(generator, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert create_method("collab", generator=generator, allow_untrained=True).refine_steps == 0
