"""Build script of sg2-kernels: the optional compiled extensions.

Metadata lives in pyproject.toml. This file only decides which of the two
extensions to compile, compiles them at install time, and records the outcome:

  sg2_kernels._cpp   CPU kernels  (torch CppExtension)
  sg2_kernels._cuda  CUDA kernels (torch CUDAExtension)

Both are optional. A missing compiler, nvcc or CUDA build of torch, or a failed
compile, never fails the install: the package then runs on its pure-PyTorch
reference, and sg2_kernels/_build_info.json says why an extension is missing.

Environment:
  SG2_KERNELS_BUILD      "auto" (default): cpp if a C++ compiler is found, cuda
                         if torch has CUDA and nvcc is found; "none": pure
                         Python; or a list such as "cpp" or "cpp,cuda".
  CUDA_HOME / CUDA_PATH  CUDA toolkit (default /usr/local/cuda, else the nvcc
                         on PATH).
  TORCH_CUDA_ARCH_LIST   GPU architectures; default: the visible GPUs, or
                         DEFAULT_CUDA_ARCHS when none is visible.
  MAX_JOBS               parallel compile jobs (default 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PKG = "sg2_kernels"
PKG_SRC = HERE / "src" / PKG
CSRC = Path("src") / PKG / "csrc"  # setuptools wants relative source paths
INFO_NAME = "_build_info.json"
KINDS = ("cpp", "cuda")
# No GPU visible at build time: SASS for Turing (T4), Ampere and Ada (8.x GPUs
# run sm_80 code) and Hopper, plus compute_90 PTX that newer GPUs (Blackwell)
# JIT-compile. Each architecture adds ~3 s per .cu file; torch would
# otherwise fail (it only targets visible GPUs).
DEFAULT_CUDA_ARCHS = "7.5;8.0;9.0+PTX"

CPP_SOURCES = [
    "cpu/bind.cpp",
    "cpu/upfirdn2d_cpu.cpp",
    "cpu/bias_act_cpu.cpp",
    "cpu/fir_block_dispatch.cpp",
    "cpu/fir_block_baseline.cpp",
    "cpu/fir_block_avx2.cpp",
    "cpu/winograd_cpu.cpp",
    "cpu/winograd_baseline.cpp",
    "cpu/winograd_avx2.cpp",
    "cpu/noise_bias_lrelu_cpu.cpp",
]
CUDA_SOURCES = [
    "cuda/bind.cpp",
    "cuda/upfirdn2d_cuda.cpp",
    "cuda/upfirdn2d_kernel.cu",
    "cuda/bias_act_cuda.cpp",
    "cuda/bias_act_kernel.cu",
]

os.environ.setdefault("MAX_JOBS", "2")


def log(msg: str) -> None:
    print(f"sg2-kernels: {msg}", flush=True)


# --------------------------------------------------------------------------
# What to build, and the record of what happened.


def parse_request() -> tuple[str, set[str]]:
    """SG2_KERNELS_BUILD -> (setting as given, extensions asked for)."""
    setting = os.environ.get("SG2_KERNELS_BUILD", "auto").strip().lower() or "auto"
    if setting == "auto":
        return setting, set(KINDS)
    if setting == "none":
        return setting, set()
    names = {n for n in re.split(r"[,;+\s]+", setting) if n}
    unknown = names - set(KINDS)
    if unknown:
        raise SystemExit(
            f"sg2-kernels: SG2_KERNELS_BUILD={setting!r}: unknown extension(s) "
            f"{sorted(unknown)}; use 'auto', 'none' or a list of {list(KINDS)}"
        )
    return setting, names


class BuildInfo:
    """Contents of _build_info.json: an entry per extension ("cpp", "cuda")
    with "built" and, when not built, "reason"."""

    def __init__(self, setting: str) -> None:
        self.data = {
            "format": 1,
            "SG2_KERNELS_BUILD": setting,
            "torch_version": None,  # the torch the extensions were built against
            "torch_cuda_version": None,
        }
        for kind in KINDS:
            self.data[kind] = {"module": f"{PKG}._{kind}", "built": False, "reason": None}

    def ext(self, kind: str) -> dict:
        return self.data[kind]

    def skip(self, kind: str, reason: str) -> None:
        self.ext(kind).update(built=False, reason=reason)

    def write(self, *pkg_dirs: Path) -> None:
        text = json.dumps(self.data, indent=2) + "\n"
        for d in pkg_dirs:
            if d.is_dir():
                (d / INFO_NAME).write_text(text, encoding="utf-8")


def find_cuda_home() -> str | None:
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            return os.environ[var]
    if Path("/usr/local/cuda/bin/nvcc").exists():
        return "/usr/local/cuda"
    nvcc = shutil.which("nvcc")  # may be a wrapper script: check the layout
    if nvcc:
        home = Path(nvcc).resolve().parent.parent
        if (home / "include" / "cuda_runtime.h").exists():
            return str(home)
    return None


def nvcc_version(cuda_home: str) -> str | None:
    nvcc = Path(cuda_home) / "bin" / ("nvcc.exe" if os.name == "nt" else "nvcc")
    if not nvcc.exists():
        return None
    try:
        out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"release (\d+\.\d+)", out)
    return m.group(1) if m else "unknown"


def nvidia_wheel_includes() -> list[str]:
    """CUDA toolkit header folders of the nvidia-* wheels that CUDA builds of
    torch pull in (nvidia/cu13/include, or nvidia/cublas/include and friends
    for CUDA 12): a fallback for headers a minimal toolkit lacks."""
    spec = find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    markers = ("cuda_runtime_api.h", "cublas_v2.h", "cusparse.h")
    dirs = []
    for root in spec.submodule_search_locations:
        for inc in sorted(Path(root).glob("*/include")):
            if any((inc / m).exists() for m in markers):
                dirs.append(str(inc))
    return dirs


def cxx_flags() -> list[str]:
    if os.name == "nt":
        return ["/O2"]
    # Python's CFLAGS carry -g; -g0 after it keeps the libraries small.
    # -fno-trapping-math lets GCC turn the activation selects into vector
    # blends (it changes no results: nothing here uses FP exceptions).
    return ["-O3", "-g0", "-fno-trapping-math"]


def plan(info: BuildInfo, wanted: set[str], setting: str) -> list:
    """The Extension objects to try; reasons for the others go into info."""
    for kind in KINDS:
        if kind not in wanted:
            info.skip(kind, f"SG2_KERNELS_BUILD={setting}")
    if not wanted:
        return []

    cuda_home = find_cuda_home() if "cuda" in wanted else None
    if cuda_home:  # torch reads it when cpp_extension is imported
        os.environ["CUDA_HOME"] = cuda_home
    try:
        import torch
        from torch.utils.cpp_extension import CppExtension, CUDAExtension
    except Exception as e:  # noqa: BLE001 - any import failure means "no torch"
        for kind in wanted:
            info.skip(kind, f"torch not importable at build time ({e})")
        return []
    info.data["torch_version"] = torch.__version__
    info.data["torch_cuda_version"] = torch.version.cuda

    exts = []
    if "cpp" in wanted:
        exts.append(
            CppExtension(
                name=f"{PKG}._cpp",
                sources=[str(CSRC / s) for s in CPP_SOURCES],
                extra_compile_args={"cxx": cxx_flags()},
            )
        )
        info.skip("cpp", "build_ext did not run")

    if "cuda" in wanted:
        reason = cuda_unavailable(torch, cuda_home)
        if reason:
            info.skip("cuda", reason)
        else:
            ext = CUDAExtension(
                name=f"{PKG}._cuda",
                sources=[str(CSRC / s) for s in CUDA_SOURCES],
                extra_compile_args={"cxx": cxx_flags(), "nvcc": ["-O3"]},
            )
            # After torch's and the toolkit's own include folders.
            ext.include_dirs.extend(nvidia_wheel_includes())
            exts.append(ext)
            info.ext("cuda")["cuda_arch_list"] = choose_cuda_archs(torch)
            info.skip("cuda", "build_ext did not run")
    return exts


def cuda_unavailable(torch, cuda_home: str | None) -> str | None:
    if getattr(torch.version, "hip", None):
        return "torch is a ROCm build (not supported)"
    if not torch.version.cuda:
        return "torch is a CPU-only build"
    if not cuda_home:
        return "nvcc not found (set CUDA_HOME)"
    version = nvcc_version(cuda_home)
    if version is None:
        return f"nvcc not found in {cuda_home}/bin (set CUDA_HOME)"
    # torch refuses to build with a different CUDA major version.
    if version.split(".")[0] != torch.version.cuda.split(".")[0]:
        return f"nvcc {version} in {cuda_home} does not match torch's CUDA {torch.version.cuda}"
    return None


def choose_cuda_archs(torch) -> str:
    """Respect TORCH_CUDA_ARCH_LIST; else torch targets the visible GPUs, and
    with none visible we set DEFAULT_CUDA_ARCHS (torch would fail)."""
    if os.environ.get("TORCH_CUDA_ARCH_LIST"):
        return os.environ["TORCH_CUDA_ARCH_LIST"]
    try:
        visible = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - a broken driver counts as no GPU
        visible = 0
    if visible:
        return "visible GPUs"
    os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_CUDA_ARCHS
    return DEFAULT_CUDA_ARCHS


SETTING, WANTED = parse_request()
INFO = BuildInfo(SETTING)
EXT_MODULES = plan(INFO, WANTED, SETTING)


# --------------------------------------------------------------------------
# Commands.


@contextlib.contextmanager
def captured_output(path: Path):
    """Send this process's and the compilers' stdout/stderr to `path`: the
    compile log is needed to report the first error line."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(path, "wb") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def first_error(log_text: str, exc: BaseException) -> str:
    for line in log_text.splitlines():
        if re.search(r"\berror\b|\bfatal\b", line, re.IGNORECASE):
            return line.strip()[:300]
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def openmp_flags(cxx: str) -> list[str]:
    """-fopenmp if the compiler accepts it (at::parallel_for needs it to use
    more than one thread), else nothing: the kernels then run serially."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "omp.cpp"
        src.write_text("#include <omp.h>\nint f() { return omp_get_max_threads(); }\n")
        cmd = [cxx, "-fopenmp", "-shared", "-fPIC", str(src), "-o", str(Path(tmp) / "omp.so")]
        try:
            ok = subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
    return ["-fopenmp"] if ok else []


def _base_build_ext():
    try:
        from torch.utils.cpp_extension import BuildExtension
    except Exception:  # noqa: BLE001 - no torch: nothing to compile anyway
        return build_ext
    return BuildExtension.with_options(no_python_abi_suffix=False)


class BuildExt(_base_build_ext()):
    """Builds each extension on its own; a failure is recorded, not raised."""

    def build_extensions(self) -> None:
        planned, built = list(self.extensions), []
        # torch's BuildExtension patches the compiler each time it runs;
        # restore it so that every extension starts from the same state.
        originals = {a: getattr(self.compiler, a) for a in ("compile", "_compile")}
        cxx = self._cxx_compiler()
        for ext in planned:
            kind = ext.name.rsplit("._", 1)[-1]
            entry = INFO.ext(kind)
            if cxx is not None and shutil.which(cxx) is None:
                INFO.skip(kind, f"C++ compiler {cxx!r} not found")
                log(f"WARNING: not building {ext.name}: {entry['reason']}")
                continue
            if kind == "cpp" and cxx is not None:
                omp = openmp_flags(cxx)
                ext.extra_compile_args["cxx"] += omp
                ext.extra_link_args += omp
                entry["openmp"] = bool(omp)
            for attr, fn in originals.items():
                setattr(self.compiler, attr, fn)
            self.extensions = [ext]
            log(f"building {ext.name} (MAX_JOBS={os.environ['MAX_JOBS']}) ...")
            start = time.monotonic()
            with tempfile.TemporaryDirectory() as tmp:
                log_path = Path(tmp) / "build.log"
                try:
                    with captured_output(log_path):
                        super().build_extensions()
                except Exception as e:  # noqa: BLE001 - any failure: go on
                    text = log_path.read_text(errors="replace")
                    sys.stdout.write(text)
                    INFO.skip(kind, f"compile failed: {first_error(text, e)}")
                    log(
                        f"WARNING: {ext.name} not built ({entry['reason']}); "
                        "sg2_kernels will use its other implementations"
                    )
                    self._remove_stale_inplace(ext)
                    continue
                sys.stdout.write(log_path.read_text(errors="replace"))
            seconds = round(time.monotonic() - start, 1)
            entry.update(built=True, reason=None, build_seconds=seconds)
            built.append(ext)
            log(f"built {ext.name} in {seconds} s")
        # Later steps (in-place copies, wheel contents) see only what exists.
        self.extensions = built

    def run(self) -> None:
        # setuptools clears self.inplace while building (it copies afterwards).
        self._in_source = bool(self.inplace or getattr(self, "editable_mode", False))
        try:
            super().run()
        finally:
            INFO.write(PKG_SRC, Path(self.build_lib) / PKG)

    def _cxx_compiler(self) -> str | None:
        exe = getattr(self.compiler, "compiler_so", None)
        return exe[0] if exe else None  # None: MSVC, found by setuptools

    def _remove_stale_inplace(self, ext) -> None:
        """An in-place (or editable) build that failed must not leave an
        older copy of the extension importable next to the sources."""
        if getattr(self, "_in_source", False):
            stale = PKG_SRC / Path(self.get_ext_filename(ext.name)).name
            if stale.exists():
                stale.unlink()
                log(f"removed the stale {stale.name}")


class BuildPy(build_py):
    """Also writes _build_info.json: build_ext does not run when there is
    nothing to compile (e.g. SG2_KERNELS_BUILD=none)."""

    def run(self) -> None:
        super().run()
        INFO.write(PKG_SRC, Path(self.build_lib) / PKG)


for kind in KINDS:
    entry = INFO.ext(kind)
    if not entry["built"] and entry["reason"] != "build_ext did not run":
        log(f"not building {entry['module']}: {entry['reason']}")

setup(
    ext_modules=EXT_MODULES,
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
)
