"""Every package is a complete, separately versioned distribution, and every suite is run."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = sorted(p.parent for p in (REPO / "packages").glob("*/pyproject.toml"))
EXPECTED = {"sg2-kernels", "sg2-core", "inv-metrics", "inv-encoders", "inv-hyper", "inv-vae", "inv-optim"}


def project_version(package_dir: Path) -> str:
    project = tomllib.loads((package_dir / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    if "version" in project.get("dynamic", []):
        return version(project["name"])  # computed by the build backend: the installed metadata has it
    return project["version"]


def newest_changelog_version(package_dir: Path) -> str | None:
    match = re.search(r"^## (\S+)", (package_dir / "CHANGELOG.md").read_text(encoding="utf-8"), re.MULTILINE)
    return match and match.group(1)


def test_all_seven_packages_are_there():
    assert {p.name for p in PACKAGE_DIRS} == EXPECTED


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


def test_hatch_test_runs_every_suite():
    # Bare `hatch test` must not silently leave out a package's suite.
    config = tomllib.loads((REPO / "hatch.toml").read_text(encoding="utf-8"))
    default_args = config["envs"]["hatch-test"]["default-args"]
    suites = [str(p.relative_to(REPO) / "tests") for p in PACKAGE_DIRS] + ["tests"]
    assert sorted(default_args) == sorted(suites)
