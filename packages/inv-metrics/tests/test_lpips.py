"""LPIPS through the lpips package with a user trunk file: the fixture's values (random AlexNet trunk, real heads)."""

import warnings

import pytest
import torch

from inv_metrics import MissingWeightsError, load_distance
from inv_metrics.lpips_distance import TRUNK_FILES


@pytest.fixture(scope="module")
def ref(data_dir):
    return torch.load(data_dir / "lpips_alex_small.pt", weights_only=True)


@pytest.fixture(scope="module")
def alex_trunk(ref, tmp_path_factory):
    """The fixture's trunk: torchvision AlexNet after manual_seed(20240101), rounded to fp16, saved the way
    torchvision's checkpoint is (a plain state dict with classifier keys too)."""
    import torchvision

    torch.manual_seed(20240101)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = torchvision.models.alexnet(weights=None).state_dict()
    state = {k: v.half().float() for k, v in state.items()}
    for key, total in ref["trunk_sums"].items():  # same random trunk as the fixture, or the test is meaningless
        assert state[key].double().sum().item() == pytest.approx(total, rel=1e-9, abs=1e-9), key
    path = tmp_path_factory.mktemp("hub") / TRUNK_FILES["alex"]
    torch.save(state, path)
    return path


def test_lpips_alex_matches_fixture(ref, alex_trunk):
    dist = load_distance("lpips-alex", weights=alex_trunk)
    assert dist.name == "lpips-alex"
    got = dist(ref["x"], ref["y"])
    assert got.shape == (4,)
    torch.testing.assert_close(got.double(), ref["lpips"], atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(dist(ref["y"], ref["x"]).double(), ref["lpips"], atol=1e-6, rtol=1e-4)


def test_lpips_from_hub_cache(ref, alex_trunk, monkeypatch):
    torch_home = alex_trunk.parent.parent / "torch_home"
    (torch_home / "hub" / "checkpoints").mkdir(parents=True, exist_ok=True)
    target = torch_home / "hub" / "checkpoints" / alex_trunk.name
    if not target.exists():
        target.symlink_to(alex_trunk)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    got = load_distance("lpips-alex")(ref["x"][:2], ref["y"][:2])
    torch.testing.assert_close(got.double(), ref["lpips"][:2], atol=1e-6, rtol=1e-4)


def test_lpips_gradients_and_grey_input(alex_trunk):
    dist = load_distance("lpips-alex", weights=alex_trunk)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 1, 64, 64, generator=gen) * 2 - 1).requires_grad_()
    y = (torch.rand(2, 1, 64, 64, generator=gen) * 2 - 1).requires_grad_()
    d = dist(x, y)
    torch.testing.assert_close(d, dist(x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)))
    d.sum().backward()
    assert x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in dist.parameters())


def test_missing_trunk_says_which_file_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for net in ("alex", "vgg", "squeeze"):
        with pytest.raises(MissingWeightsError, match=TRUNK_FILES[net]) as err:
            load_distance(f"lpips-{net}")
        assert str(tmp_path / "hub" / "checkpoints") in str(err.value)
    with pytest.raises(MissingWeightsError, match="nope.pth"):
        load_distance("lpips-alex", weights=tmp_path / "nope.pth")


def test_wrong_trunk_file_is_refused(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a torchvision alex checkpoint"):
        load_distance("lpips-alex", weights=path)


def test_unknown_distance():
    with pytest.raises(ValueError, match="lpips-alex"):
        load_distance("lpips-resnet")
