"""CSVR thermostat statistics, Maxwell–Boltzmann initial velocities, determinism, restart and instabilities."""

import numpy as np
import pytest
import torch

from trajcast_dist import units
from trajcast_dist.dynamics.rollout import SerialDriver
from trajcast_dist.dynamics.step import Instability
from trajcast_dist.dynamics.thermostat import CSVR, degrees_of_freedom, kinetic_energy
from trajcast_dist.dynamics.velocities import maxwell_boltzmann
from trajcast_dist.forecast import ForecastSettings, forecast, initial_state, make_step_settings, run_forecast
from trajcast_dist.reduce import LocalReducer


def test_csvr_samples_canonical_kinetic_energy():
    """CSVR alone (velocities only) must sample K ~ Gamma(N_f/2, k_B T): mean N_f k_B T/2, σ = √(N_f/2) k_B T."""
    n_atoms, temperature = 40, 300.0
    masses = torch.full((n_atoms,), 16.0, dtype=torch.float64)
    n_dof = degrees_of_freedom(n_atoms, periodic=True)
    thermostat = CSVR(temperature, tau_fs=20.0, dt_fs=5.0, n_dof=n_dof)
    rng = np.random.default_rng(7)
    v = torch.as_tensor(maxwell_boltzmann(masses.numpy(), 100.0, rng), dtype=torch.float64)
    samples = []
    for i in range(30000):
        v = thermostat.apply(v, masses, LocalReducer(), rng)
        if i >= 200:
            samples.append(kinetic_energy(v, masses, LocalReducer()))
    samples = np.array(samples)
    kt = units.KB_EV_PER_K * temperature
    # autocorrelation time ≈ τ/(2Δt) = 2 steps, so ~7,000 effective samples: 3% tolerance is > 3 standard errors
    assert samples.mean() == pytest.approx(0.5 * n_dof * kt, rel=0.01)
    assert samples.std() == pytest.approx(np.sqrt(0.5 * n_dof) * kt, rel=0.03)


def test_maxwell_boltzmann_has_zero_momentum_and_exact_temperature(water, rng):
    masses = units.masses_amu(water.numbers)
    v = maxwell_boltzmann(masses, 300.0, rng)
    np.testing.assert_allclose((masses[:, None] * v).sum(0), 0.0, atol=1e-12)
    t = units.temperature_k(units.kinetic_energy_ev(masses, v), degrees_of_freedom(len(water), True))
    assert t == pytest.approx(300.0, rel=1e-12)


def test_maxwell_boltzmann_molecule_has_zero_angular_momentum(rng):
    positions = rng.normal(size=(20, 3)) * 2
    masses = np.linspace(1, 16, 20)
    v = maxwell_boltzmann(masses, 300.0, rng, periodic=False, positions=positions)
    com = (masses[:, None] * positions).sum(0) / masses.sum()
    np.testing.assert_allclose((masses[:, None] * np.cross(positions - com, v)).sum(0), 0.0, atol=1e-12)
    np.testing.assert_allclose((masses[:, None] * v).sum(0), 0.0, atol=1e-12)


def test_same_seed_gives_identical_trajectory(tiny_model, water):
    a = forecast(water, tiny_model, 4, ForecastSettings(seed=3))
    b = forecast(water, tiny_model, 4, ForecastSettings(seed=3))
    c = forecast(water, tiny_model, 4, ForecastSettings(seed=4))
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.get_velocities(), b.get_velocities())
    assert not np.allclose(a.get_velocities(), c.get_velocities())


def test_momentum_is_conserved_along_a_forecast(tiny_model, water):
    final = forecast(water, tiny_model, 5, ForecastSettings(nve=True, seed=2))
    p = (units.masses_amu(final.numbers)[:, None] * units.velocities_from_ase(final.get_velocities())).sum(0)
    np.testing.assert_allclose(p, 0.0, atol=1e-12)


def test_restart_continues_bit_identically(tiny_model, water, tmp_path):
    from trajcast_dist.io.restart import load_restart

    settings = ForecastSettings(seed=5, stride=3)
    rng = np.random.default_rng(settings.seed)
    state = initial_state(water, tiny_model, settings, rng)
    straight = run_forecast(SerialDriver(tiny_model, state, make_step_settings(tiny_model, state, settings), rng),
                            6, settings)
    rng = np.random.default_rng(settings.seed)
    state = initial_state(water, tiny_model, settings, rng)
    run_forecast(SerialDriver(tiny_model, state, make_step_settings(tiny_model, state, settings), rng), 3, settings,
                 restart_path=tmp_path / "r.npz")
    state, rng_state, _ = load_restart(tmp_path / "r.npz")
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    resumed = run_forecast(SerialDriver(tiny_model, state, make_step_settings(tiny_model, state, settings), rng), 3,
                           settings)
    assert resumed.step == straight.step == 6
    assert np.array_equal(resumed.positions, straight.positions)
    assert np.array_equal(resumed.velocities, straight.velocities)
    assert np.array_equal(resumed.image, straight.image)


def test_runaway_temperature_stops_with_a_clear_message(tiny_model, water):
    with torch.no_grad():
        tiny_model.readout.velocity_rms.fill_(5.0)  # absurd velocities: T explodes in one step
    with pytest.raises(Instability, match="temperature .* exceeds"):
        forecast(water, tiny_model, 3, ForecastSettings(nve=True))


def test_nan_prediction_stops_before_writing(tiny_model, water, tmp_path):
    with torch.no_grad():
        tiny_model.readout.displacement_rms.fill_(float("nan"))
    out = tmp_path / "t.xyz"
    with pytest.raises(Instability, match="NaN"):
        forecast(water, tiny_model, 3, ForecastSettings(), output=out)
    import ase.io
    assert len(ase.io.read(out, ":")) == 1  # the initial frame only, never a NaN frame


def test_float32_forecast_tracks_float64(tiny_model, water):
    a = forecast(water, tiny_model, 3, ForecastSettings(seed=1, dtype="float64"))
    b = forecast(water, tiny_model, 3, ForecastSettings(seed=1, dtype="float32"))
    assert np.abs(a.positions - b.positions).max() < 1e-4
