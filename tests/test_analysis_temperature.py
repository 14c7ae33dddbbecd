"""Temperature: canonical fluctuations σ_T = √(2/N_f)·T0 on Maxwell–Boltzmann samples."""

import numpy as np
import pytest

from trajcast_dist import units
from trajcast_dist.analysis.temperature import (canonical_sigma_K, degrees_of_freedom, instantaneous_temperature,
                                                temperature_statistics)


def test_degrees_of_freedom():
    assert degrees_of_freedom(192, periodic=True) == 573
    assert degrees_of_freedom(20, periodic=False) == 54


def test_maxwell_boltzmann_samples_have_canonical_temperature_fluctuations():
    rng = np.random.default_rng(0)
    t0, n_atoms, n_samples = 300.0, 24, 8000
    masses = units.masses_amu([8, 1, 1] * 8)
    sigma_v = np.sqrt(units.KB_EV_PER_K * t0 / (masses * units.AMU_A2_PER_FS2_IN_EV))
    v = rng.normal(size=(n_samples, n_atoms, 3)) * sigma_v[None, :, None]
    # Zero total momentum, as the thermostat and conservation layer keep it: 3 fewer degrees of freedom.
    v -= (np.einsum("i,sij->sj", masses, v) / masses.sum())[:, None, :]
    n_dof = degrees_of_freedom(n_atoms, periodic=True)
    temperatures = [instantaneous_temperature(x, masses, n_dof) for x in v]
    stats = temperature_statistics(np.arange(n_samples), temperatures, n_dof, t0_K=t0)
    assert stats.mean_K == pytest.approx(t0, rel=0.005)
    assert stats.sigma_canonical_K == pytest.approx(np.sqrt(2 / 69) * 300.0)
    assert stats.sigma_K == pytest.approx(stats.sigma_canonical_K, rel=0.03)
    # The paper's √(2/(3N)) form would be 2 % off for 24 atoms; the exact N_f is what the samples follow.
    assert canonical_sigma_K(t0, 3 * n_atoms) < stats.sigma_canonical_K
