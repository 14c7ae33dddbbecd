"""Potential-energy distributions with a fake (harmonic) energy function in place of the LAMMPS force field."""

import numpy as np
import pytest
from ase import Atoms

from trajcast_dist import units
from trajcast_dist.analysis.energy import EnergyAccumulator, energy_distribution, histogram_overlap, shared_edges
from trajcast_dist.errors import UserError

K_EV_PER_A2 = 2.0


def harmonic_energy(frames):
    """E = ½ k Σ |r − r_0|² with r_0 at the origin: canonical samples give ⟨E⟩ = 3N/2 · k_B T."""
    return np.array([0.5 * K_EV_PER_A2 * np.sum(atoms.positions ** 2) for atoms in frames])


def canonical_frames(n_frames, t_K, seed):
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(units.KB_EV_PER_K * t_K / K_EV_PER_A2)
    return [Atoms("Ar5", positions=rng.normal(scale=sigma, size=(5, 3))) for _ in range(n_frames)]


def test_harmonic_energies_have_equipartition_mean_and_batching_keeps_order():
    calls = []
    frames = canonical_frames(3000, 300.0, seed=0)

    def counting(batch):
        calls.append(len(batch))
        return harmonic_energy(batch)

    accumulator = EnergyAccumulator(counting, chunk=256)
    for atoms in frames:
        accumulator.add(atoms)
    energies = accumulator.result()
    assert calls == [256] * 11 + [3000 - 11 * 256]
    np.testing.assert_allclose(energies, harmonic_energy(frames))
    result = energy_distribution(energies, shared_edges(energies))
    assert result.mean_ev == pytest.approx(1.5 * 5 * units.KB_EV_PER_K * 300.0, rel=0.02)
    # E is Gamma(3N/2, k_B T): σ = √(3N/2)·k_B T.
    assert result.sigma_ev == pytest.approx(np.sqrt(7.5) * units.KB_EV_PER_K * 300.0, rel=0.05)


def test_a_frame_the_force_field_refuses_stops_the_energies_and_says_which():
    """A broken molecule half-way through a forecast: the energies stop (None) with the frames named, no crash."""
    calls = []

    def refusing(batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise UserError("water frame: oxygen 24 has 1 nearest hydrogens")
        return harmonic_energy(batch)

    accumulator = EnergyAccumulator(refusing, chunk=256)
    for atoms in canonical_frames(1000, 300.0, seed=1):
        accumulator.add(atoms)
    assert accumulator.result() is None and calls == [256, 256, 256]  # nothing evaluated after the failure
    assert accumulator.failure == "analysed frame 512–767 on (water frame: oxygen 24 has 1 nearest hydrogens)"


def test_histogram_overlap_high_for_same_ensemble_and_low_for_another_temperature():
    same = histogram_overlap(harmonic_energy(canonical_frames(3000, 300.0, 1)),
                             harmonic_energy(canonical_frames(3000, 300.0, 2)), bins=30)[0]
    hot = histogram_overlap(harmonic_energy(canonical_frames(3000, 300.0, 1)),
                            harmonic_energy(canonical_frames(3000, 900.0, 2)), bins=30)[0]
    assert histogram_overlap([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])[0] == pytest.approx(1.0)
    assert same > 0.93
    assert hot < 0.5
