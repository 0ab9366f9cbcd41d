"""Every package is a complete, separately versioned distribution, installed from this tree, declaring exactly
the siblings the package graph allows it; and every suite is run."""

import importlib
import re
import tomllib
from importlib.metadata import distribution, version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = sorted(p.parent for p in (REPO / "packages").glob("*/pyproject.toml"))
EXPECTED = {"sg2-kernels", "sg2-core", "inv-metrics", "inv-encoders", "inv-hyper", "inv-vae", "inv-optim"}
# The siblings each distribution depends on (ARCHITECTURE.md; tests/test_package_graph.py checks the imports).
SIBLINGS = {
    "sg2-kernels": set(),
    "sg2-core": {"sg2-kernels"},
    "inv-metrics": {"sg2-core"},
    "inv-encoders": {"sg2-core", "inv-metrics"},
    "inv-hyper": {"sg2-core", "inv-metrics"},
    "inv-vae": {"sg2-core", "inv-metrics"},
    "inv-optim": {"sg2-core", "inv-metrics"},
}


def project_version(package_dir: Path) -> str:
    project = tomllib.loads((package_dir / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    if "version" in project.get("dynamic", []):
        return version(project["name"])  # computed by the build backend: the installed metadata has it
    return project["version"]


def newest_changelog_version(package_dir: Path) -> str | None:
    """The newest released entry (``## <version> ...``); an ``## Unreleased`` section above it does not count."""
    text = (package_dir / "CHANGELOG.md").read_text(encoding="utf-8")
    match = re.search(r"^## (?!Unreleased\b)(\S+)", text, re.MULTILINE)
    return match and match.group(1)


def test_all_seven_packages_are_there():
    assert {p.name for p in PACKAGE_DIRS} == EXPECTED == set(SIBLINGS)


@pytest.mark.parametrize("package_dir", PACKAGE_DIRS, ids=lambda p: p.name)
def test_package_metadata(package_dir):
    project = tomllib.loads((package_dir / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == package_dir.name
    assert project.get("requires-python"), "requires-python is missing"
    assert (package_dir / "README.md").read_text(encoding="utf-8").strip(), "README.md is empty"
    assert newest_changelog_version(package_dir) == project_version(package_dir)
    # The editable install is current: reinstall (hatch env prune) after a version bump.
    assert version(project["name"]) == project_version(package_dir)
    assert list((package_dir / "tests").glob("test_*.py")), "no tests/test_*.py"


@pytest.mark.parametrize("dist", sorted(EXPECTED))
def test_the_installed_package_is_this_tree(dist):
    # The workspace installs editable: the tests must exercise this tree, not another install.
    module = importlib.import_module(dist.replace("-", "_"))
    assert module.__version__ == version(dist)
    assert Path(module.__file__).resolve().is_relative_to(REPO / "packages" / dist / "src" / module.__name__)


@pytest.mark.parametrize("dist", sorted(EXPECTED))
def test_declares_exactly_its_allowed_siblings(dist):
    names = set()
    for requirement in distribution(dist).requires or []:
        if "extra ==" in requirement:
            continue  # optional extras are not part of the graph
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0)
        names.add(re.sub(r"[-_.]+", "-", name).lower())
    assert names & EXPECTED == SIBLINGS[dist]


def test_hatch_test_runs_every_suite():
    # Bare `hatch test` must not silently leave out a package's suite.
    config = tomllib.loads((REPO / "hatch.toml").read_text(encoding="utf-8"))
    default_args = config["envs"]["hatch-test"]["default-args"]
    suites = [str(p.relative_to(REPO) / "tests") for p in PACKAGE_DIRS] + ["tests"]
    assert sorted(default_args) == sorted(suites)
