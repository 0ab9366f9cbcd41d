"""The commands' thread policy (sg2_core.threads): what it chooses from the machine, what overrides it, and that
a command on a busy machine restarts itself once with sleeping OpenMP threads while a Python call never does."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from sg2_core import threads


@pytest.fixture(autouse=True)
def _keep_threads(monkeypatch):
    for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_quiet_machine_gets_every_core_and_spinning_threads():
    choice = threads.choose(busy=0.1)
    assert (choice.threads, choice.passive, choice.reason) == (4, False, "quiet machine")


@pytest.mark.parametrize("busy", [0.5, 1.4, 3.0, 7.5])
def test_a_shared_machine_gets_sleeping_threads(busy):
    choice = threads.choose(busy=busy)
    assert (choice.threads, choice.passive) == (4, True)
    assert "shared machine" in choice.line() and "sleep" in choice.line()


def test_an_explicit_number_and_the_environment_win(monkeypatch):
    assert threads.choose(3, busy=3.5).threads == 3
    assert threads.choose("auto", busy=0.0).threads == 4
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert threads.choose(busy=3.0).passive is False
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert threads.choose(busy=0.0).passive is True
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose(busy=3.0).reason == "OMP_NUM_THREADS"


@pytest.mark.parametrize("bad", ["0", "-1", 0])
def test_a_bad_thread_count_is_refused(bad):
    with pytest.raises(ValueError, match="--threads must be a number >= 1 or 'auto'"):
        threads.choose(bad)


def test_busy_cores_measures_a_share_of_our_cores():
    busy = threads.busy_cores(0.05)
    assert busy is None or 0.0 <= busy <= len(os.sched_getaffinity(0)) + 1e-6


def test_a_python_call_applies_the_choice_without_restarting(monkeypatch, capsys):
    monkeypatch.setattr(threads, "busy_cores", lambda seconds=0.2: 3.0)  # shared: would ask for sleeping threads
    choice = threads.configure()
    assert choice.passive and torch.get_num_threads() == 4
    assert capsys.readouterr().out.startswith("threads: 4 of 4 cores, 3.0 busy")


@pytest.mark.slow
def test_a_command_on_a_busy_machine_restarts_once_with_sleeping_threads():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    cores = len(os.sched_getaffinity(0))
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(1.0)
        command = [sys.executable, "-m", "sg2_core.bench_threads", "--worker", "--steps", "1", "--images", "1"]
        out = subprocess.run([*command, "--repeats", "1"], env=env, capture_output=True, text=True, timeout=300)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["wait_policy"] == "PASSIVE"
    assert "idle OpenMP threads sleep" in result["line"]


def test_the_option_takes_a_count_or_auto():
    import argparse

    parser = argparse.ArgumentParser()
    threads.add_option(parser)
    assert parser.parse_args([]).threads == "auto"
    assert parser.parse_args(["--threads", "3"]).threads == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--threads", "0"])
