"""Who may import whom (ARCHITECTURE.md), checked on the source of every package.

A package may import a sibling only if the graph allows it AND its pyproject.toml declares it,
so an undeclared cross-package import fails here even though the shared dev environment would
happily import it.
"""

import ast
import re
import shutil
import tomllib
from importlib.metadata import requires
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# import name -> siblings it may import (and declare).
ALLOWED = {
    "sg2_kernels": set(),
    "sg2_core": {"sg2_kernels"},
    "inv_metrics": {"sg2_core", "sg2_kernels"},
    "inv_encoders": {"sg2_core", "inv_metrics"},
    "inv_hyper": {"sg2_core", "inv_metrics"},
    "inv_vae": {"sg2_core", "inv_metrics"},
    "inv_optim": {"sg2_core", "inv_metrics"},
}


def _import_name(requirement_or_dist: str) -> str:
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement_or_dist.strip()).group(0)
    return re.sub(r"[-_.]+", "_", name).lower()


def imported_modules(source: str, filename: str = "<string>") -> set[str]:
    """Top-level names of the absolute imports in `source`, including literal
    importlib.import_module("x") / __import__("x") calls."""
    found = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
                if isinstance(first.value, str) and not first.value.startswith("."):
                    found.add(first.value)
    return {name.split(".")[0] for name in found}


def declared_siblings(package_dir: Path, project: dict) -> set[str]:
    if "dependencies" in project.get("dynamic", []):
        # Computed by the build backend: trust the installed metadata.
        reqs = [r for r in requires(project["name"]) or [] if "extra ==" not in r]
    else:
        reqs = project.get("dependencies", [])
    return {_import_name(r) for r in reqs} & set(ALLOWED)


def check_tree(root: Path, allowed: dict[str, set[str]] = ALLOWED) -> list[str]:
    """Every violation of the package graph under root/packages, as readable lines."""
    problems = []
    package_dirs = sorted(p.parent for p in (root / "packages").glob("*/pyproject.toml"))
    if not package_dirs:
        return [f"no package under {root / 'packages'}"]
    for package_dir in package_dirs:
        project = tomllib.loads((package_dir / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
        project.setdefault("name", package_dir.name)
        module = _import_name(project["name"])
        where = package_dir.relative_to(root)
        if module not in allowed:
            problems.append(f"{where}: no rule for {module!r} in the package graph")
            continue
        src = package_dir / "src" / module
        if not src.is_dir():
            problems.append(f"{where}: no src/{module}/")
            continue
        declared = declared_siblings(package_dir, project)
        for extra in sorted(declared - allowed[module]):
            problems.append(f"{where}: declares {extra}, which {module} may not depend on")
        # a package's scripts/ may reach no further than its code (a script needing more goes to tools/)
        for path in sorted(src.rglob("*.py")) + sorted(package_dir.glob("scripts/**/*.py")):
            siblings = imported_modules(path.read_text(encoding="utf-8"), str(path)) & set(allowed)
            for imported in sorted(siblings - {module}):
                if imported not in allowed[module]:
                    problems.append(f"{path.relative_to(root)}: imports {imported}, which {module} may not import")
                elif imported not in declared:
                    problems.append(f"{path.relative_to(root)}: imports {imported}, not declared in pyproject.toml")
    return problems


def test_the_repository_follows_the_package_graph():
    problems = check_tree(REPO)
    assert not problems, "\n".join(problems)


def test_every_package_has_a_rule():
    modules = {_import_name(p.parent.name) for p in (REPO / "packages").glob("*/pyproject.toml")}
    assert modules == set(ALLOWED)


# --- the checker itself, on small planted trees --------------------------------------------------


def _package(root: Path, dist: str, deps: list[str], files: dict[str, str]) -> None:
    pkg = root / "packages" / dist
    src = pkg / "src" / dist.replace("-", "_")
    src.mkdir(parents=True)
    dependencies = ", ".join(f'"{d}"' for d in deps)
    (pkg / "pyproject.toml").write_text(
        f'[project]\nname = "{dist}"\nversion = "0.1.0"\ndependencies = [{dependencies}]\n'
    )
    for name, text in {"__init__.py": "", **files}.items():
        (src / name).write_text(text)


def test_checker_accepts_a_clean_tree(tmp_path):
    _package(tmp_path, "sg2-kernels", ["torch>=2.1"], {"ops.py": "import torch\n"})
    _package(tmp_path, "sg2-core", ["sg2-kernels>=0.1"], {"net.py": "from sg2_kernels.ops import x\nfrom . import y\n"})
    _package(tmp_path, "inv-hyper", ["sg2-core>=0.1", "inv-metrics>=0.1"], {"m.py": "import sg2_core.net as n\n"})
    assert check_tree(tmp_path) == []


def test_checker_rejects_a_family_importing_another_family(tmp_path):
    _package(tmp_path, "inv-hyper", ["sg2-core>=0.1"], {"m.py": "def f():\n    from inv_vae import model\n"})
    assert check_tree(tmp_path) == [
        "packages/inv-hyper/src/inv_hyper/m.py: imports inv_vae, which inv_hyper may not import"
    ]


def test_checker_rejects_a_script_reaching_up_the_graph(tmp_path):
    _package(tmp_path, "sg2-core", ["sg2-kernels>=0.1"], {})
    (tmp_path / "packages" / "sg2-core" / "scripts").mkdir()
    (tmp_path / "packages" / "sg2-core" / "scripts" / "train.py").write_text("from inv_metrics.fid import main\n")
    assert check_tree(tmp_path) == [
        "packages/sg2-core/scripts/train.py: imports inv_metrics, which sg2_core may not import"
    ]


def test_checker_rejects_an_undeclared_import(tmp_path):
    _package(tmp_path, "inv-metrics", ["torch"], {"lpips.py": "import sg2_core\n"})
    assert check_tree(tmp_path) == [
        "packages/inv-metrics/src/inv_metrics/lpips.py: imports sg2_core, not declared in pyproject.toml"
    ]


def test_checker_rejects_a_forbidden_declaration_and_a_literal_import_module(tmp_path):
    _package(
        tmp_path,
        "sg2-kernels",
        ["inv-metrics>=0.1"],
        {"a.py": "import importlib\nimportlib.import_module('sg2_core.x')\n"},
    )
    assert check_tree(tmp_path) == [
        "packages/sg2-kernels: declares inv_metrics, which sg2_kernels may not depend on",
        "packages/sg2-kernels/src/sg2_kernels/a.py: imports sg2_core, which sg2_kernels may not import",
    ]


def test_checker_rejects_a_violation_planted_in_a_copy_of_the_repository(tmp_path):
    for pyproject in (REPO / "packages").glob("*/pyproject.toml"):
        package_dir = pyproject.parent
        shutil.copytree(
            package_dir / "src",
            tmp_path / "packages" / package_dir.name / "src",
            ignore=shutil.ignore_patterns("__pycache__", "*.so"),
        )
        shutil.copy(pyproject, tmp_path / "packages" / package_dir.name / "pyproject.toml")
    assert check_tree(tmp_path) == []
    planted = tmp_path / "packages" / "inv-optim" / "src" / "inv_optim" / "__init__.py"
    planted.write_text(planted.read_text() + "\nimport inv_encoders\n")
    assert check_tree(tmp_path) == [
        "packages/inv-optim/src/inv_optim/__init__.py: imports inv_encoders, which inv_optim may not import"
    ]
