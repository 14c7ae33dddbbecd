"""Issue #15, fault injection: a forecast killed (SIGKILL) at random points and continued with
`--restart ... --append` ten times over gives the uninterrupted trajectory, with no repeated or missing step and
no hidden temporaries left; serially (forked runs, milliseconds to start) and on 2 MPI ranks."""

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import ase.io
import pytest

from trajcast_dist.cli.main import main
from trajcast_dist.io.restart import RestartReader

from conftest import ROOT

TRIALS = 10
TIMEOUT_S = 180


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from trajcast_dist.structures import water_box

    from trajcast_dist.model import cpu_kernel

    # Build the fused kernel (the fast path's) before any run is killed: a run killed while compiling it would
    # leave torch's build lock behind.
    assert cpu_kernel.edge_kernel() is not None, cpu_kernel.kernel_status()
    root = tmp_path_factory.mktemp("faults")
    assert main(["model", "init", "--config", str(ROOT / "configs" / "tiny.yaml"), "--species", "H,O", "--out",
                 str(root / "tiny.pt")]) == 0
    ase.io.write(root / "w24.xyz", water_box(2, 6.2, seed=1))  # serial
    ase.io.write(root / "w81.xyz", water_box(3, 9.3, seed=1))  # wide enough for 2 ranks at a 4 Å cutoff
    return root


def _args(files, structure, out, total):
    """A fresh run, or the continuation of the last restart (in place, appending) for the steps still to go."""
    restart = Path(f"{out}.restart.npz")
    common = ["--model", files / "tiny.pt", "--stride", 1, "--seed", 3, "--threads", 1, "--quiet"]
    if not restart.exists():
        return [files / structure, "--steps", total, "--output", out, "--overwrite", *common]
    remaining = total - RestartReader(restart).meta["step"]
    return ["--restart", restart, "--append", "--steps", remaining, "--output", out, *common] if remaining else None


def _wait_for_steps(out, size_before, proc_alive, limit_s=TIMEOUT_S):
    """Until the run has written past where it started (it is stepping), or ended."""
    start = time.monotonic()
    while proc_alive() and time.monotonic() - start < limit_s:
        if out.exists() and out.stat().st_size > size_before + 1:
            return
        time.sleep(0.01)


def _kill_chain(files, structure, out, total, launch, step_s, seed):
    """TRIALS runs, each SIGKILLed a random moment after it starts stepping; then one run to the end."""
    pick = random.Random(seed)
    killed_at = []
    for _ in range(TRIALS):
        args = _args(files, structure, out, total)
        if args is None:
            break
        size = out.stat().st_size if out.exists() else 0
        alive, kill = launch(args)
        _wait_for_steps(out, size, alive)
        time.sleep(pick.uniform(0.0, 2.0 * step_s))
        kill()
        restart = Path(f"{out}.restart.npz")
        killed_at.append(RestartReader(restart).meta["step"] if restart.exists() else None)
    args = _args(files, structure, out, total)
    if args is not None:
        alive, _ = launch(args, wait=True)
    print(f"restart step after each kill: {killed_at}")
    return killed_at


def _fork(args, wait=False):
    """`trajcast-dist forecast ARGS` in a forked child (the imports are already done)."""
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        code = 1
        try:
            code = main(["forecast", *map(str, args)])
        finally:
            os._exit(code)
    status = {}

    def alive():
        if "code" not in status:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status["code"] = code
        return "code" not in status

    def kill():
        if alive():
            os.kill(pid, signal.SIGKILL)
            _, status["code"] = os.waitpid(pid, 0)  # reaped: a zombie would still count as a live process

    if wait:
        _, code = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(code) == 0
    return alive, kill


def _mpiexec(args, wait=False):
    command = ["mpiexec", "-n", "2", "trajcast-dist-forecast", *map(str, args)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=dict(os.environ, OMP_NUM_THREADS="1"))

    def kill():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TIMEOUT_S)

    if wait:
        _, err = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0, err
    return (lambda: proc.poll() is None), kill


def _steps(path):
    return [frame.info["step"] for frame in ase.io.read(path, ":")]


def _no_hidden_files(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith("."))


def test_serial_forecast_killed_ten_times_continues_to_the_same_bytes(files, tmp_path):
    # As on 2 ranks: kills within ~2 steps of the fast path (≈ 12 ms each for 24 atoms), 200 steps, so the tenth
    # kill still finds steps left on an idle machine (60 steps and kills up to 0.2 s in ran out: 8 of 10 kills).
    total = 200
    reference = tmp_path / "reference.xyz"
    assert main(["forecast", *map(str, _args(files, "w24.xyz", reference, total))]) == 0
    out = tmp_path / "killed.xyz"
    killed_at = _kill_chain(files, "w24.xyz", out, total, _fork, step_s=0.01, seed=15)
    assert len(killed_at) == TRIALS
    assert _steps(out) == list(range(total + 1))
    assert out.read_bytes() == reference.read_bytes()
    assert _no_hidden_files(tmp_path) == []


@pytest.mark.mpi
@pytest.mark.slow
def test_two_rank_forecast_killed_ten_times_continues_to_the_same_trajectory(files, tmp_path):
    # Kills land within ~2 steps of the fast path (a few ms each); every trial still advances at least one
    # frame, so 200 steps are never used up before the tenth kill, however fast or slow the machine.
    total = 200
    reference = tmp_path / "reference.xyz"
    _mpiexec(_args(files, "w81.xyz", reference, total), wait=True)
    out = tmp_path / "killed.xyz"
    assert len(_kill_chain(files, "w81.xyz", out, total, _mpiexec, step_s=0.01, seed=16)) == TRIALS
    assert _steps(out) == list(range(total + 1))
    assert out.read_bytes() == reference.read_bytes()
    assert _no_hidden_files(tmp_path) == []
