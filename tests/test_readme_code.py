"""Every ```python block of the READMEs runs, one test per block (``README path:line``).

The blocks of one README run in order in one namespace, in a temporary working folder, as a reader would
run them in one session: a later block may use names an earlier one defined. Each block has a time limit
(``README_BLOCK_TIMEOUT`` seconds, default 300). A block that needs what cannot be had here (pretrained
weights, a family not written yet) is marked in the README by an HTML comment on the line before it,
``<!-- skip: needs FFHQ weights -->``, and is reported as skipped with that reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
BLOCK_TIMEOUT = int(os.environ.get("README_BLOCK_TIMEOUT", "300"))  # a guard against hangs, not a speed check
SKIP = re.compile(r"^\s*<!--\s*skip:\s*(.+?)\s*-->\s*$")
OPEN = re.compile(r"^```python\s*$")


def python_blocks(readme: Path) -> list[dict]:
    """``[{line, source, skip}]``: each ```python block (``line`` is its opening fence, 1-based), and the reason
    of a ``<!-- skip: ... -->`` comment on the closest non-blank line above it, if any."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if OPEN.match(lines[i]):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise ValueError(f"{readme}:{i + 1}: a ```python block is never closed")
            above = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            skip = SKIP.match(above)
            blocks.append({"line": i + 1, "source": "\n".join(lines[i + 1 : end]), "skip": skip and skip.group(1)})
            i = end
        i += 1
    return blocks


BLOCKS = {readme: python_blocks(readme) for readme in READMES}  # read once: the tests' ids are these lines
CASES = [(readme, block) for readme, blocks in BLOCKS.items() for block in blocks]

# Runs the blocks of one README in one namespace; per block it records ok / the traceback / skipped.
# Each block is compiled with its README line numbers, so a traceback points into the README.
WORKER = r"""
import contextlib, io, json, signal, sys, time, traceback
blocks, name, timeout, results_path = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3]), sys.argv[4]

class BlockTimeout(Exception):
    pass

def on_alarm(signum, frame):
    raise BlockTimeout(f"the block ran longer than {timeout} s")

signal.signal(signal.SIGALRM, on_alarm)
namespace = {"__name__": "__main__"}
results = {}
for block in blocks:
    if block["skip"]:
        continue
    out = io.StringIO()
    start = time.perf_counter()
    signal.alarm(timeout)
    try:
        code = compile("\n" * block["line"] + block["source"], name, "exec")
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
        results[block["line"]] = {"ok": True, "seconds": time.perf_counter() - start}
    except BaseException:
        results[block["line"]] = {"ok": False, "seconds": time.perf_counter() - start, "error": traceback.format_exc(),
                                  "stdout": out.getvalue()[-2000:]}
    finally:
        signal.alarm(0)
    with open(results_path, "w") as f:
        json.dump(results, f)
"""

_results: dict[Path, dict] = {}


def readme_results(readme: Path, tmp_path_factory) -> dict:
    """Runs every block of ``readme`` once (the first of its tests to ask), and remembers the results."""
    if readme not in _results:
        work = tmp_path_factory.mktemp(readme.parent.name)
        (work / "blocks.json").write_text(json.dumps(BLOCKS[readme]))
        results_path = work / "results.json"
        name = str(readme.relative_to(ROOT))
        env = {**os.environ, "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}
        limit = BLOCK_TIMEOUT * max(1, len(BLOCKS[readme])) + 60
        proc = subprocess.run(
            [sys.executable, "-c", WORKER, str(work / "blocks.json"), name, str(BLOCK_TIMEOUT), str(results_path)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=limit,
        )
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        _results[readme] = {"results": results, "stderr": proc.stderr[-3000:], "returncode": proc.returncode}
    return _results[readme]


@pytest.mark.slow
@pytest.mark.parametrize("readme, block", CASES, ids=[f"{r.relative_to(ROOT)}:{b['line']}" for r, b in CASES])
def test_readme_block_runs(readme, block, tmp_path_factory):
    if block["skip"]:
        pytest.skip(block["skip"])
    run = readme_results(readme, tmp_path_factory)
    result = run["results"].get(str(block["line"]))
    if result is None:
        pytest.fail(f"the block did not run: the worker ended with status {run['returncode']}\n{run['stderr']}")
    if not result["ok"]:
        pytest.fail(
            f"{readme.relative_to(ROOT)}:{block['line']} raised after {result['seconds']:.1f} s:\n"
            f"{result['error']}\nstdout:\n"
            f"{result['stdout']}",
            pytrace=False,
        )


def test_blocks_are_found_and_markers_parsed(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n\n```python\na = 1\n```\n\n<!-- skip: needs FFHQ weights -->\n\n```python\nb = 2\n```\n```bash\nls\n```\n"
    )
    assert python_blocks(readme) == [
        {"line": 3, "source": "a = 1", "skip": None},
        {"line": 9, "source": "b = 2", "skip": "needs FFHQ weights"},
    ]
    assert len(CASES) >= 10  # the packages' READMEs hold python blocks; finding none would test nothing
