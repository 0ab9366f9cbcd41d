"""Every installed method keeps the contract of sg2_core.Method (``sg2_core.testing.check_method``), on the
embedded demo generator, with the cheap options its class declares (``test_options``, ``test_batch_tolerance``).

The list is ``list_methods()``: a family's entry points, so a method added to a ``pyproject.toml`` is checked here
without any other change."""

import tomllib
from pathlib import Path

import pytest
import torch

from sg2_core import demo, list_methods
from sg2_core.methods.registry import ENTRY_POINT_GROUP
from sg2_core.testing import check_method

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generator():
    return demo.load_generator().requires_grad_(False)


@pytest.fixture(scope="module")
def images():
    return demo.load_test_images()[0][:3]


@pytest.fixture(autouse=True)
def _one_thread():
    # The demo networks are tiny: on a shared 2-core machine, thread hand-offs cost more than the maths.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_declared_method_is_installed():
    declared = set()
    for pyproject in REPO.glob("packages/*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        declared |= set(project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {}))
    assert declared and declared <= set(list_methods())


@pytest.mark.parametrize("name", list_methods())
def test_method_keeps_the_contract(name, generator, images):
    check_method(name, generator, images)
