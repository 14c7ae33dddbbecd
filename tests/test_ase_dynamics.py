"""`trajcast_dist.ase.TrajCastDynamics`: the CLI's numbers through ASE's dynamics interface and observers."""

import ase.io
import ase.units
import numpy as np
import pytest
from ase.io import Trajectory

from trajcast_dist import units
from trajcast_dist.ase import TrajCastDynamics
from trajcast_dist.cli.main import main
from trajcast_dist.io.restart import load_restart
from trajcast_dist.pretrained import WATER_192_MD


def water_without_velocities():
    atoms = ase.io.read(WATER_192_MD)
    del atoms.arrays["momenta"]     # both runs draw Maxwell–Boltzmann velocities from the seed
    return atoms


def test_twenty_steps_match_the_forecast_cli_with_the_same_seed(tmp_path):
    ase.io.write(tmp_path / "water.xyz", water_without_velocities())
    out = tmp_path / "cli.xyz"
    assert main(["forecast", str(tmp_path / "water.xyz"), "--steps", "20", "--seed", "7", "--stride", "20",
                 "--output", str(out), "--quiet"]) == 0
    cli, _, _ = load_restart(f"{out}.restart.npz")      # full precision, unlike the extxyz frames
    atoms = water_without_velocities()
    dyn = TrajCastDynamics(atoms, temperature_K=300, seed=7)  # the thermostat the model names, as the CLI
    assert dyn.settings.thermostat == "csvr" and dyn.settings.tau_fs == 50.0
    dyn.run(20)
    assert cli.step == 20
    assert np.abs(atoms.get_positions() - cli.positions).max() <= 1e-12
    assert np.abs(units.velocities_from_ase(atoms.get_velocities()) - cli.velocities).max() <= 1e-12
    np.testing.assert_array_equal(atoms.arrays["image"], cli.image)
    assert dyn.get_time() == pytest.approx(20 * 5.0 * ase.units.fs) and atoms.info["time_fs"] == 100.0


def test_observers_write_trajectory_and_extxyz_frames_and_runs_continue(tmp_path):
    atoms = ase.io.read(WATER_192_MD)
    dyn = TrajCastDynamics(atoms, seed=1, logfile=str(tmp_path / "md.log"), loginterval=2)
    traj = Trajectory(tmp_path / "md.traj", "w", atoms)
    dyn.attach(traj.write, interval=2)
    dyn.attach(lambda: ase.io.write(tmp_path / "md.xyz", atoms, append=True), interval=2)
    dyn.run(2)
    dyn.run(2)
    traj.close()
    frames = ase.io.read(tmp_path / "md.traj", ":")
    xyz = ase.io.read(tmp_path / "md.xyz", ":")
    assert len(frames) == len(xyz) == 3                     # steps 0, 2, 4
    assert [f.info["time_fs"] for f in xyz] == [0.0, 10.0, 20.0]
    np.testing.assert_allclose(frames[-1].get_velocities(), atoms.get_velocities(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(frames[-1].get_positions(), atoms.get_positions(), rtol=0, atol=1e-12)
    log = (tmp_path / "md.log").read_text().splitlines()
    assert log[0].split() == ["#", "time_ps", "T_K", "T_H_K", "T_O_K"] and len(log) == 4
    assert 200.0 < float(log[-1].split()[1]) < 400.0
    # One run of 4 steps from the same start gives the same state as 2 + 2.
    again = ase.io.read(WATER_192_MD)
    TrajCastDynamics(again, seed=1).run(4)
    np.testing.assert_array_equal(again.get_positions(), atoms.get_positions())


def test_velocities_set_on_the_atoms_between_runs_are_taken_over():
    atoms = ase.io.read(WATER_192_MD)
    dyn = TrajCastDynamics(atoms, nve=True)
    dyn.run(1)
    atoms.set_velocities(0.5 * atoms.get_velocities())
    edited = atoms.copy()
    dyn.run(1)
    fresh = TrajCastDynamics(edited, nve=True)          # starts from the edited state itself
    fresh.run(1)
    np.testing.assert_allclose(atoms.get_positions(), edited.get_positions(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(atoms.get_velocities(), edited.get_velocities(), rtol=0, atol=1e-10)
