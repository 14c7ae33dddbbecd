"""`mpiexec -n P trajcast-dist-forecast ...` end to end: a restart written with 4 ranks continues with 2 ranks
and with 1 to the uninterrupted serial trajectory (also under the Langevin thermostat), a structure with velocities streamed by rank 0 gives the serial
trajectory, a box too small for P ranks is one clear line, and an exception on one
rank ends every rank quickly instead of hanging."""

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.mpi

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 180


def forecast(ranks, *args, cwd):
    command = ["trajcast-dist-forecast", *map(str, args), "--quiet"]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd,
                          env=_env())


def _env():
    import os

    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(HERE),
                                                                             os.environ.get("PYTHONPATH", "")]))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from trajcast_dist.config import load_config
    from trajcast_dist.io.checkpoint import save_model
    from trajcast_dist.model import TrajCast
    from trajcast_dist.structures import water_box
    from test_parallel_equivalence import BOX_A, VELOCITY_RMS_A_PER_FS

    root = tmp_path_factory.mktemp("parallel_cli")
    config = load_config(HERE.parent / "configs" / "tiny.yaml")
    scales = dataclasses.replace(config.scales, velocity_rms_A_per_fs=VELOCITY_RMS_A_PER_FS)
    torch.manual_seed(0)
    save_model(root / "model.pt", TrajCast(config.model, [1, 8], scales=scales).to(torch.float64))
    ase.io.write(root / "water.xyz", water_box(3, BOX_A, seed=5), format="extxyz")
    ase.io.write(root / "small.xyz", water_box(2, BOX_A * 2 / 3, seed=5), format="extxyz")
    moving = water_box(3, BOX_A, seed=6)
    moving.set_velocities(np.random.default_rng(1).normal(0.0, 0.1, (len(moving), 3)))  # streamed, not drawn
    ase.io.write(root / "moving.xyz", moving, format="extxyz")
    return root


def _unwrapped(path):
    from trajcast_dist.io.restart import load_restart

    state, _, _ = load_restart(path)
    return state.positions + state.image @ state.cell, state.velocities, state.step


def _assert_same_state(path, reference, what):
    positions, velocities, step = _unwrapped(path)
    ref_positions, ref_velocities, ref_step = _unwrapped(reference)
    assert step == ref_step
    print(f"{what}: max |Δr| {np.abs(positions - ref_positions).max():.2e} Å, "
          f"max |Δv| {np.abs(velocities - ref_velocities).max():.2e} Å/fs")
    assert np.abs(positions - ref_positions).max() <= 1e-9
    assert np.abs(velocities - ref_velocities).max() <= 1e-9


def test_restart_from_four_ranks_continues_on_two(files):
    common = ["--model", files / "model.pt", "--stride", "5"]
    serial = forecast(1, files / "water.xyz", *common, "--steps", 20, "--output", "serial.xyz", cwd=files)
    assert serial.returncode == 0, serial.stderr
    first = forecast(4, files / "water.xyz", *common, "--steps", 10, "--output", "a.xyz", cwd=files)
    assert first.returncode == 0, first.stderr
    assert "4 processes" in first.stdout and "ghosts/rank=" in first.stdout and "halo_kB/step=" in first.stdout
    second = forecast(2, "--restart", "a.xyz.restart.npz", *common, "--steps", 10, "--output", "b.xyz", cwd=files)
    assert second.returncode == 0, second.stderr
    print(first.stdout, second.stdout)
    assert _unwrapped(files / "b.xyz.restart.npz")[2] == 20
    _assert_same_state(files / "b.xyz.restart.npz", files / "serial.xyz.restart.npz", "restart 4→2 ranks vs serial")
    third = forecast(1, "--restart", "a.xyz.restart.npz", *common, "--steps", 10, "--output", "c.xyz", cwd=files)
    assert third.returncode == 0, third.stderr
    _assert_same_state(files / "c.xyz.restart.npz", files / "serial.xyz.restart.npz", "restart 4→1 rank vs serial")
    frames = ase.io.read(files / "b.xyz", index=":")
    assert [f.info["step"] for f in frames] == [10, 15, 20]  # a new output starts with the restart frame
    serial_last = ase.io.read(files / "serial.xyz", index=-1)
    np.testing.assert_allclose(frames[-1].positions, serial_last.positions, atol=1e-6)  # extxyz: 8 decimals
    np.testing.assert_array_equal(frames[-1].numbers, serial_last.numbers)  # output order is input order


def test_streamed_input_with_velocities_matches_serial(files):
    """moving.xyz has momenta: rank 0 streams it (net momentum removed after the scatter), no ASE read."""
    common = [files / "moving.xyz", "--model", files / "model.pt", "--stride", "1", "--steps", 2]
    serial = forecast(1, *common, "--output", "m1.xyz", cwd=files)
    assert serial.returncode == 0, serial.stderr
    distributed = forecast(2, *common, "--output", "m2.xyz", cwd=files)
    assert distributed.returncode == 0, distributed.stderr
    _assert_same_state(files / "m2.xyz.restart.npz", files / "m1.xyz.restart.npz", "streamed input, 2 ranks vs serial")
    for mine, theirs in zip(ase.io.read(files / "m2.xyz", ":"), ase.io.read(files / "m1.xyz", ":"), strict=True):
        assert mine.info["step"] == theirs.info["step"]
        assert mine.info["temperature_K"] == pytest.approx(theirs.info["temperature_K"], rel=1e-12)
        np.testing.assert_allclose(mine.positions, theirs.positions, atol=1e-6)  # extxyz: 8 decimals
        np.testing.assert_array_equal(mine.arrays["image"], theirs.arrays["image"])


def test_langevin_on_two_ranks_and_after_a_restart_matches_serial(files):
    """Per-atom noise is keyed by (seed, step, atom id): 2 ranks draw what 1 process draws, and a restart (which
    records the thermostat) continues it."""
    common = ["--model", files / "model.pt", "--stride", "5", "--thermostat", "langevin", "--tau", "100"]
    serial = forecast(1, files / "water.xyz", *common, "--steps", 10, "--output", "l1.xyz", cwd=files)
    assert serial.returncode == 0, serial.stderr
    assert "NVT Langevin T=300.0 K τ=100.0 fs" in serial.stdout
    first = forecast(2, files / "water.xyz", *common, "--steps", 5, "--output", "l2.xyz", cwd=files)
    assert first.returncode == 0, first.stderr
    second = forecast(2, "--restart", "l2.xyz.restart.npz", "--model", files / "model.pt", "--steps", 5,
                      "--output", "l3.xyz", cwd=files)
    assert second.returncode == 0, second.stderr
    assert "NVT Langevin" in second.stdout
    _assert_same_state(files / "l3.xyz.restart.npz", files / "l1.xyz.restart.npz", "Langevin, 2 ranks + restart")
    csvr = forecast(1, files / "water.xyz", "--model", files / "model.pt", "--steps", 10, "--output", "c1.xyz",
                    cwd=files)
    assert np.abs(_unwrapped(files / "c1.xyz.restart.npz")[1] - _unwrapped(files / "l1.xyz.restart.npz")[1]).max() > 1e-6


def test_too_many_ranks_is_one_line_naming_largest_p(files):
    proc = forecast(2, files / "small.xyz", "--model", files / "model.pt", "--steps", 2, "--output", "x.xyz",
                    cwd=files)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "largest valid P for this box is 1" in lines[0]


def test_bad_input_stops_all_ranks_with_one_message(files):
    proc = forecast(2, files / "missing.xyz", "--model", files / "model.pt", "--steps", 2, "--output", "y.xyz",
                    cwd=files)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "missing.xyz not found" in proc.stderr


def test_one_rank_raising_stops_every_rank(files):
    import test_parallel_equivalence as eq

    np.savez(files / "cases.npz", **eq._cases())
    start = time.perf_counter()
    proc = subprocess.run(["mpiexec", "-n", "4", sys.executable, HERE / "mpi_worker.py", "fault",
                           files / "model.pt", files / "cases.npz"], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=_env())
    elapsed = time.perf_counter() - start
    print(f"one rank raising: exit {proc.returncode} after {elapsed:.1f} s (incl. start-up)")
    assert proc.returncode != 0
    assert "injected failure on rank 1" in proc.stderr
    assert elapsed < 90
