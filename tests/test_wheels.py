"""Every package builds an sdist and a wheel, and the wheels install by name into a clean venv.

The clean venv gets torch the way a user would, by installing it, but uv's cache makes that a
matter of hard links, not gigabytes: `uv venv` from the base interpreter (no access to the
workspace environment's site-packages, so no editable install of ours can leak in), then torch
alone (a user who already has torch), then `uv pip install inv-hyper` with the built wheels as a
find-links folder and nothing pinning torch: the torch that is there must stay, nothing of torch or
CUDA may be added, and nothing may be built (UV_NO_BUILD). torch comes from the same local wheel
folders and pins as the workspace (UV_FIND_LINKS, UV_CONSTRAINT).
"""

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = sorted(p.parent for p in (REPO / "packages").glob("*/pyproject.toml"))
# What `pip install inv-hyper` must bring: itself and, by name, what it depends on.
PULLED_BY_INV_HYPER = {"inv-hyper", "sg2-core", "inv-metrics", "sg2-kernels"}


def _uv() -> str:
    uv = os.environ.get("HATCH_UV") or shutil.which("uv")  # hatch exposes its uv as HATCH_UV
    if not uv:
        pytest.fail("uv not found: run the tests through ./dev test (or hatch test)")
    return uv


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _normalized(name: str) -> str:
    return name.replace("-", "_").lower()


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # sg2-kernels: no C++/CUDA compilation for this test, its setup.py honours SG2_KERNELS_BUILD.
    env = {**os.environ, "SG2_KERNELS_BUILD": "none"}

    def build(package_dir: Path):
        # uv build makes the sdist, then the wheel from the sdist: a file missing from the sdist fails.
        return _run([_uv(), "build", "--out-dir", out / package_dir.name, package_dir], env=env)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(build, PACKAGE_DIRS))
    return out


def _built(dist_dir: Path, package_dir: Path) -> tuple[Path, Path]:
    wheels = list((dist_dir / package_dir.name).glob("*.whl"))
    sdists = list((dist_dir / package_dir.name).glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, (wheels, sdists)
    return wheels[0], sdists[0]


def _wheel_version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


@pytest.mark.parametrize("package_dir", PACKAGE_DIRS, ids=lambda p: p.name)
def test_builds_a_wheel_and_an_sdist(dist_dir, package_dir):
    project = tomllib.loads((package_dir / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wheel, sdist = _built(dist_dir, package_dir)
    module = _normalized(project["name"])
    assert wheel.name.startswith(f"{module}-") and sdist.name.startswith(f"{module}-")
    if "version" in project:
        assert _wheel_version(wheel) == project["version"]
    assert sdist.name == f"{module}-{_wheel_version(wheel)}.tar.gz"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert f"{module}/__init__.py" in names
    assert f"{module}/py.typed" in names, "the wheel does not say it is typed (PEP 561)"
    assert not any("/tests/" in n or n.startswith("tests/") for n in names), "tests leaked into the wheel"
    # Built with SG2_KERNELS_BUILD=none: a compiled file here is a stale in-place build that leaked in.
    assert not [n for n in names if n.endswith((".so", ".pyd", ".dll"))]


def test_clean_venv_installs_inv_hyper_by_name(dist_dir, tmp_path):
    uv = _uv()
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    versions = {}
    for package_dir in PACKAGE_DIRS:  # wheels only: nothing may be built during the install
        wheel, _ = _built(dist_dir, package_dir)
        shutil.copy(wheel, wheelhouse)
        versions[package_dir.name] = _wheel_version(wheel)

    # The workspace pins, plus our own packages pinned to what was just built, so that a same-named
    # release on a registry can never stand in for them.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text((REPO / "constraints.txt").read_text() + "".join(f"{n}=={v}\n" for n, v in versions.items()))
    find_links = [str(wheelhouse), *filter(None, os.environ.get("UV_FIND_LINKS", "").split(","))]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(UV_FIND_LINKS=",".join(find_links), UV_CONSTRAINT=str(constraints), UV_NO_BUILD="1")

    venv = tmp_path / "venv"
    _run([uv, "venv", "--quiet", "--python", sys.executable, venv], env=env)
    python = venv / "bin" / "python"
    # A user who already has torch (installed first, as they had it) ...
    _run([uv, "pip", "install", "--quiet", "--python", python, "torch"], env=env)
    had = json.loads(_run([uv, "pip", "list", "--python", python, "--format", "json"], env=env).stdout)
    # ... installs a family with nothing pinning torch: the installed one must do (no second torch, no
    # CUDA stack, and with UV_NO_BUILD no isolated build environment with its own torch).
    ours_only = tmp_path / "ours.txt"
    ours_only.write_text("".join(f"{n}=={v}\n" for n, v in versions.items()))
    installed = _run(
        [uv, "pip", "install", "--python", python, "inv-hyper"], env={**env, "UV_CONSTRAINT": str(ours_only)}
    )
    changed = [line.strip() for line in installed.stderr.splitlines() if line.strip()[:2] in ("+ ", "- ", "~ ")]
    assert f"+ inv-hyper=={versions['inv-hyper']}" in changed, installed.stderr  # uv's lines were read
    assert not [c for c in changed if c[2:].startswith(("torch==", "nvidia-", "triton"))], changed
    listed = json.loads(_run([uv, "pip", "list", "--python", python, "--format", "json"], env=env).stdout)
    now = {p["name"]: p["version"] for p in listed}
    assert {p["name"]: now.get(p["name"]) for p in had} == {p["name"]: p["version"] for p in had}
    ours = {p["name"]: p["version"] for p in listed if p["name"] in versions}
    assert ours == {name: versions[name] for name in PULLED_BY_INV_HYPER}

    probe = """
import importlib, importlib.metadata as md, json, sys, torch
mods = {m: importlib.import_module(m) for m in ("inv_hyper", "sg2_core", "inv_metrics", "sg2_kernels")}
print(json.dumps({
    "sys_path": sys.path,
    "torch": torch.__version__,
    "modules": {m: [mod.__version__, md.version(m.replace("_", "-")), mod.__file__] for m, mod in mods.items()},
}))
"""
    report = json.loads(_run([python, "-c", probe], env=env, cwd=tmp_path).stdout)
    assert report["torch"].split("+")[0] == "2.14.1"
    # Nothing of the workspace environment or of the source tree is visible in the clean venv.
    for entry in report["sys_path"]:
        assert not entry.startswith(sys.prefix) and not entry.startswith(str(REPO)), entry
    for module, (module_version, dist_version, file) in report["modules"].items():
        dist = module.replace("_", "-")
        assert module_version == dist_version == versions[dist]
        assert Path(file).is_relative_to(venv), file
    # And it is our code: the installed inv_hyper is byte for byte the source.
    installed = Path(report["modules"]["inv_hyper"][2])
    assert installed.read_bytes() == (REPO / "packages/inv-hyper/src/inv_hyper/__init__.py").read_bytes()

    # With nothing else of ours installed by hand, the registered method inverts the demo images with the
    # shipped weights, better than its own phase I, and the interpolation command runs.
    works = """
import json, torch
from sg2_core import create_method, demo, list_methods
G = demo.load_generator()
x = demo.load_test_images()[0][:16]
full, phase1 = create_method("hyperinverter", generator=G)(x), create_method("hyperinverter-w", generator=G)(x)
mse = lambda inv: float((inv.render() - x).square().mean())
print(json.dumps({"methods": list_methods(), "mse": mse(full), "mse_phase1": mse(phase1),
                  "offsets": len(full.weight_offsets)}))
"""
    result = json.loads(_run([python, "-c", works], env=env, cwd=tmp_path).stdout)
    assert {"hyperinverter", "hyperinverter-w"} <= set(result["methods"])
    assert result["offsets"] == 11 and result["mse"] < result["mse_phase1"], result
    _run([python, "-m", "inv_hyper.interpolate", "--steps", "3", "--out", "grid.png"], env=env, cwd=tmp_path)
    assert (tmp_path / "grid.png").stat().st_size > 0
