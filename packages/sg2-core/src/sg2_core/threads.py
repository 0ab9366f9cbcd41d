"""CPU threads for the commands, chosen from the work and from how busy the machine is, not only its cores.

torch's default is one thread per core, as if the machine were ours alone. On a shared machine (CI runners,
lab servers) an OpenMP thread that spin-waits for a teammate whose core another process holds makes every
parallel region wait for the scheduler: a run gets several times slower. So a command that starts on a busy
machine (cores busy with other processes, sampled from /proc/stat) lets its idle OpenMP threads sleep
(``OMP_WAIT_POLICY=PASSIVE``). ``python -m sg2_core.bench_threads`` measures it.

Only commands call :func:`configure`, once, at their start: library calls never change the caller's threads.
``--threads N`` (or ``--threads auto``) and the usual environment variables (``OMP_NUM_THREADS``,
``OMP_WAIT_POLICY``) win over the choice.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import torch

# A machine counts as shared when other processes keep at least this many of our cores busy.
SHARED_BUSY_CORES = 0.5
_SAMPLE_SECONDS = 0.2
_REEXEC_MARK = "SG2_THREADS_REEXEC"  # set in the re-executed process, so it never re-executes again


@dataclass(frozen=True)
class ThreadChoice:
    """What a command runs with, and why; :meth:`line` is what it prints."""

    threads: int
    passive: bool  # idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE) instead of spinning
    cores: int
    busy: float | None  # cores other processes kept busy while we looked (None: not measured)
    reason: str

    def line(self) -> str:
        waits = "sleep" if self.passive else "spin"
        busy = "" if self.busy is None else f", {self.busy:.1f} busy"
        return (
            f"threads: {self.threads} of {self.cores} cores{busy} ({self.reason}); idle OpenMP threads {waits} "
            "(--threads N or OMP_NUM_THREADS / OMP_WAIT_POLICY to choose)"
        )


def usable_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpu_times(cpus: set[int]) -> tuple[float, float] | None:
    """(busy, total) jiffies summed over ``cpus`` from /proc/stat, or None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as f:
            lines = f.readlines()
    except OSError:
        return None
    busy = total = 0.0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        values = [float(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(values)
        busy += sum(values) - values[3] - values[4]
    return busy, total


def busy_cores(seconds: float = _SAMPLE_SECONDS) -> float | None:
    """How many of our cores other processes keep busy, measured over ``seconds`` (this process sleeps
    meanwhile); None where it cannot be measured."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        return None
    start = _cpu_times(cpus)
    if start is None:
        return None
    time.sleep(seconds)
    end = _cpu_times(cpus)
    spent = end[1] - start[1]
    return 0.0 if spent <= 0 else len(cpus) * (end[0] - start[0]) / spent


def choose(requested: int | str | None = None, *, busy: float | None = None) -> ThreadChoice:
    """The threads and wait policy for a command's work. ``requested``: ``--threads`` (a number or "auto");
    ``busy``: cores measured busy (measured here if None)."""
    cores = usable_cores()
    wait_policy = os.environ.get("OMP_WAIT_POLICY", "").strip().lower()
    if requested not in (None, "auto"):
        threads = int(requested)
        if threads < 1:
            raise ValueError(f"--threads must be a number >= 1 or 'auto', got {requested}")
        return ThreadChoice(threads, wait_policy == "passive", cores, None, "--threads")
    if os.environ.get("OMP_NUM_THREADS"):
        return ThreadChoice(torch.get_num_threads(), wait_policy == "passive", cores, None, "OMP_NUM_THREADS")
    busy = busy_cores() if busy is None else busy
    shared = busy is not None and busy >= SHARED_BUSY_CORES
    passive = wait_policy == "passive" if wait_policy else shared
    # On a shared machine every core's thread, sleeping while it waits, measured faster than one thread per
    # free core: the scheduler shares the CPU per thread, and a sleeping thread wastes none of its share.
    return ThreadChoice(cores, passive, cores, busy, "shared machine" if shared else "quiet machine")


TOOLKIT = ("sg2_core", "sg2_kernels", "inv_metrics", "inv_encoders", "inv_hyper", "inv_vae", "inv_optim")


def _command_process() -> bool:
    """Whether this process is one of the toolkit's ``python -m`` commands (not Python calling one)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None and spec.name.split(".")[0] in TOOLKIT


def configure(requested: int | str | None = None, *, quiet: bool = False) -> ThreadChoice:
    """Choose (see :func:`choose`), apply and print the one line (on stdout, with the command's other notes;
    stderr is for errors).

    OpenMP reads its wait policy when torch loads, so a passive choice takes effect only in a fresh process:
    a command started from its own command line (``python -m ...``, torchrun) starts itself again with
    ``OMP_WAIT_POLICY=PASSIVE``, once; a command's ``main()`` called from Python never does.
    """
    choice = choose(requested)
    if _command_process() and choice.passive and "OMP_WAIT_POLICY" not in os.environ and _REEXEC_MARK not in os.environ:
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", _REEXEC_MARK: "1"}
        sys.stderr.flush()
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    torch.set_num_threads(choice.threads)
    if not quiet:
        print(choice.line(), flush=True)
    return choice


def thread_count(text: str) -> int | str:
    """``--threads``' value: a number >= 1, or 'auto'."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a number >= 1 or 'auto', got {text!r}")
    return int(text)


def add_option(parser) -> None:
    """The commands' ``--threads`` option."""
    parser.add_argument(
        "--threads",
        type=thread_count,
        default="auto",
        help="torch CPU threads: a number, or 'auto' (the default: every core, sleeping when the machine is shared)",
    )
