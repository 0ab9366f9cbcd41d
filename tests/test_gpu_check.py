"""``./dev gpu-check`` (tools/gpu_check.py): its CPU run end to end, as CI makes it (``--device cpu --quick``),
and a comparison that must fail."""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sg2_kernels import ACTIVATIONS

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "gpu_check.py"


def _load_tool(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_cpu_quick_run_writes_every_section(tmp_path):
    out = tmp_path / "check"
    cmd = [sys.executable, str(TOOL), "--device", "cpu", "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["passed"] and report["environment"]["device"] == "cpu" and report["environment"]["quick"]

    # 1. the CUDA-only tests ran, and without a GPU every one of them skipped
    tests = report["cuda_tests"]
    assert tests["ok"] and tests["skipped"] > 0 and tests["passed"] == tests["failed"] == tests["errors"] == 0
    assert tests["skip_reasons"] == {"no CUDA device": tests["skipped"]}

    # 2. every op compared, every comparison passing, both orders of gradients where the op has them
    ops = report["ops"]
    assert {r["op"] for r in ops} == {
        "upfirdn2d",
        "bias_act",
        "conv2d_resample",
        "noise_bias_lrelu_",
        "winograd.conv3x3",
    }
    assert all(r["status"] == "pass" and r["impl"] == "cpp" for r in ops), [r for r in ops if r["status"] != "pass"]
    assert all("grad2" in r for r in ops if r["op"] in ("upfirdn2d", "bias_act", "conv2d_resample"))
    assert {r["case"].split(",")[0] for r in ops if r["op"] == "bias_act"} >= set(ACTIVATIONS)
    assert {r["dtype"] for r in ops} == {"float32", "float64"}

    # 3. every timing, as a finite ratio of two ways measured in the run
    works = [r["what"].split(" ")[0] for r in report["timings"]]
    assert sorted(set(works)) == ["G", "HyperInverter", "PTI", "e4e", "psp"], works
    assert all(math.isfinite(r["speedup"]) and r["speedup"] > 0 for r in report["timings"])
    assert [r["batch"] for r in report["timings"] if r["what"].startswith("G ")] == [1, 1, 2, 2]

    # 4. the Markdown table holds the same sections
    md = (out / "gpu_check.md").read_text()
    for heading in ("# GPU check: cpu", "## 1. CUDA-only tests", "## 2. Ops against the reference", "## 3. Timings"):
        assert heading in md
    assert "**PASS**" in md and md.count("| pass |") == len(ops)
    assert all(r["what"] in md for r in report["timings"])


class _FlatGradient(torch.autograd.Function):
    """x², with a correct first-order gradient that autograd cannot differentiate further in x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return 2 * dy * x.detach()


def test_a_wrong_second_order_gradient_fails_the_comparison(monkeypatch):
    tool = _load_tool(monkeypatch)
    case = tool.OpCase(
        "square", "broken", ((3, 4),), lambda impl, x: x * x if impl == "ref" else _FlatGradient.apply(x)
    )
    row = tool.compare(case, "broken", torch.device("cpu"), torch.float64)
    assert row["forward"] == row["grad"] == 0 and row["grad2"] > 0.1 and row["status"] == "FAIL"


def test_a_section_that_breaks_is_reported_and_the_files_are_still_written(tmp_path, monkeypatch):
    tool = _load_tool(monkeypatch)
    tests = dict(
        command="pytest", exit_code=0, passed=0, failed=0, errors=0, skipped=1, skip_reasons={}, seconds=0, ok=True
    )
    monkeypatch.setattr(tool, "run_cuda_tests", lambda device, out: tests)
    monkeypatch.setattr(tool, "op_cases", lambda: [])
    for timer in ("time_synthesis", "time_encoders", "time_hyper"):
        monkeypatch.setattr(tool, timer, lambda device, sizes: [])

    def broken(device, sizes):
        raise RuntimeError("no PTI today")

    monkeypatch.setattr(tool, "time_pti", broken)
    report = tool.run(torch.device("cpu"), tmp_path, quick=True, log=lambda *args, **kwargs: None)
    assert not report["passed"] and report["errors"] == {"timing PTI": "RuntimeError: no PTI today"}
    assert json.loads((tmp_path / "gpu_check.json").read_text())["errors"] == report["errors"]
    md = (tmp_path / "gpu_check.md").read_text()
    assert "**FAIL**" in md and "**Error** in timing PTI: `RuntimeError: no PTI today`" in md
