"""inv-vae's installed metadata agrees with its source tree and with the package graph."""

import re
from importlib.metadata import distribution, version
from pathlib import Path

import inv_vae

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
DIST = "inv-vae"
# The monorepo's packages, and the ones this package may depend on (see ARCHITECTURE.md).
SIBLINGS = {"sg2-kernels", "sg2-core", "inv-metrics", "inv-encoders", "inv-hyper", "inv-vae", "inv-optim"}
ALLOWED = {"sg2-core", "inv-metrics"}


def _newest_changelog_version() -> str:
    match = re.search(r"^## (\S+)", (PACKAGE_ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.MULTILINE)
    assert match, "CHANGELOG.md has no '## <version> ...' entry"
    return match.group(1)


def test_version_is_the_installed_one_and_the_newest_changelog_entry():
    assert inv_vae.__version__ == version(DIST)
    assert inv_vae.__version__ == _newest_changelog_version()


def test_declares_exactly_its_allowed_siblings():
    names = set()
    for requirement in distribution(DIST).requires or []:
        if "extra ==" in requirement:
            continue  # optional extras are not part of the graph
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0)
        names.add(re.sub(r"[-_.]+", "-", name).lower())
    assert names & SIBLINGS == ALLOWED


def test_imports_this_source_tree():
    # The workspace installs editable: the tests must exercise this tree, not another install.
    assert Path(inv_vae.__file__).resolve().is_relative_to(PACKAGE_ROOT / "src" / "inv_vae")
