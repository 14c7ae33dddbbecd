"""CSVR and Langevin thermostat statistics, Maxwell–Boltzmann initial velocities, determinism, restart and instabilities."""

import numpy as np
import pytest
import torch

from trajcast_dist import units
from trajcast_dist.dynamics.step import Instability
from trajcast_dist.dynamics.thermostat import CSVR, Langevin, degrees_of_freedom, hashed_normals, kinetic_energy
from trajcast_dist.dynamics.velocities import maxwell_boltzmann
from trajcast_dist.forecast import ForecastSettings, forecast, initial_state, run_forecast, serial_driver
from trajcast_dist.reduce import LocalReducer
from helpers import thermal_velocities


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
        v = thermostat.apply(v, masses, LocalReducer(), rng, np.arange(n_atoms), i)
        if i >= 200:
            samples.append(kinetic_energy(v, masses, LocalReducer()))
    samples = np.array(samples)
    kt = units.KB_EV_PER_K * temperature
    # autocorrelation time ≈ τ/(2Δt) = 2 steps, so ~7,000 effective samples: 3% tolerance is > 3 standard errors
    assert samples.mean() == pytest.approx(0.5 * n_dof * kt, rel=0.01)
    assert samples.std() == pytest.approx(np.sqrt(0.5 * n_dof) * kt, rel=0.03)


def test_langevin_holds_each_element_at_temperature_with_zero_momentum():
    """Started with a hot light species and a cold heavy one (a model's equipartition failure), per-atom Langevin
    brings each to T; the net momentum stays zero; ⟨½mv²⟩ per degree of freedom is k_B T/2 for each species."""
    n_atoms, temperature = 60, 300.0
    masses = torch.tensor([1.008] * 40 + [15.999] * 20, dtype=torch.float64)
    light = slice(0, 40)
    rng = np.random.default_rng(3)
    v = maxwell_boltzmann(masses.numpy(), 300.0, rng)
    v[light] *= 2.0  # H at ~4 × T
    v = torch.as_tensor(v - (masses.numpy()[:, None] * v).sum(0) / masses.sum().item(), dtype=torch.float64)
    thermostat = Langevin(temperature, tau_fs=25.0, dt_fs=5.0, seed=11)
    kinetic = {"H": [], "O": []}
    for step in range(1, 8001):
        v = thermostat.apply(v, masses, LocalReducer(), rng, np.arange(n_atoms), step)
        if step > 100:
            e = 0.5 * units.AMU_A2_PER_FS2_IN_EV * masses.unsqueeze(-1) * v.square()
            kinetic["H"].append(float(e[light].sum()) / (3 * 40))
            kinetic["O"].append(float(e[40:].sum()) / (3 * 20))
    np.testing.assert_allclose((masses.unsqueeze(-1) * v).sum(0).numpy(), 0.0, atol=1e-10)
    half_kt = 0.5 * units.KB_EV_PER_K * temperature
    # correlation time τ/(2Δt) ≈ 2.5 steps: ~3,000 independent samples of 60–120 dof; 3 % is > 4 standard errors.
    # Zeroing the noise's net momentum takes 3 of 180 dof, spread by mass: O loses 3·(M_O/M)/60, 4 %.
    assert np.mean(kinetic["H"]) == pytest.approx(half_kt, rel=0.03)
    assert np.mean(kinetic["O"]) == pytest.approx(half_kt * (1 - 3 * (20 * 15.999 / masses.sum().item()) / 60),
                                                  rel=0.03)


def test_hashed_noise_depends_only_on_seed_step_and_atom():
    """What lets P ranks (any subset of atoms, any order) and a restart draw the same noise as one process."""
    ids = np.arange(5000)
    full = hashed_normals(4, 17, ids)
    picked = np.array([4321, 7, 2500, 0])
    np.testing.assert_array_equal(hashed_normals(4, 17, picked), full[picked])
    assert abs(full.mean()) < 0.03 and full.std() == pytest.approx(1.0, abs=0.03)
    assert abs(np.corrcoef(full[:, 0], full[:, 1])[0, 1]) < 0.05
    assert not np.allclose(hashed_normals(4, 18, ids), full) and not np.allclose(hashed_normals(5, 17, ids), full)


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


@pytest.mark.parametrize("thermostat", ["csvr", "langevin"])
def test_restart_continues_bit_identically(tiny_model, water, tmp_path, thermostat):
    from trajcast_dist.io.restart import load_restart

    settings = ForecastSettings(seed=5, stride=3, thermostat=thermostat)
    rng = np.random.default_rng(settings.seed)
    state = initial_state(water, tiny_model, settings, rng)
    straight = run_forecast(serial_driver(tiny_model, state, settings, rng), 6, settings)
    rng = np.random.default_rng(settings.seed)
    state = initial_state(water, tiny_model, settings, rng)
    run_forecast(serial_driver(tiny_model, state, settings, rng), 3, settings,
                 restart_path=tmp_path / "r.npz")
    state, rng_state, _ = load_restart(tmp_path / "r.npz")
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    resumed = run_forecast(serial_driver(tiny_model, state, settings, rng), 3, settings)
    assert resumed.step == straight.step == 6
    assert np.array_equal(resumed.positions, straight.positions)
    assert np.array_equal(resumed.velocities, straight.velocities)
    assert np.array_equal(resumed.image, straight.image)


def test_runaway_temperature_stops_with_a_clear_message(tiny_model, water):
    with torch.no_grad():
        tiny_model.readout.velocity_rms.fill_(5.0)  # absurd velocities: T explodes in one step
    with pytest.raises(Instability, match="temperature .* exceeds .* --equilibrate-ps 0.5"):
        forecast(water, tiny_model, 3, ForecastSettings(nve=True))


@pytest.fixture
def free_flight(tiny_model, monkeypatch):
    """The tiny model predicting straight-line motion, Δr = vΔt and v′ = v: in NVE every velocity stays as it is."""
    def forward(graph, sync=None, reducer=None):
        velocities = graph.velocities[: graph.n_owned]
        return velocities * tiny_model.dt_fs, velocities.clone()

    monkeypatch.setattr(tiny_model, "forward", forward)
    return tiny_model


def test_equilibration_holds_a_hot_start_at_T_then_hands_over(free_flight, water):
    """--equilibrate-ps: the first steps run under Langevin τ = 10 fs whatever the ensemble, then the ensemble
    asked for (here NVE with a free-flight model, which keeps every velocity as it is)."""
    tiny_model = free_flight
    hot = water.copy()
    hot.set_velocities(units.velocities_to_ase(thermal_velocities(hot.numbers, 900.0, seed=4)))
    n_eq = 40
    settings = ForecastSettings(nve=True, seed=1, equilibrate_ps=n_eq * tiny_model.dt_fs / 1000)
    assert "after 0.2 ps of equilibration (Langevin T=300.0 K τ=10 fs)" in settings.describe()
    temperatures = []
    rng = np.random.default_rng(1)
    driver = serial_driver(tiny_model, initial_state(hot, tiny_model, settings, rng), settings, rng)
    for _ in range(2 * n_eq):
        temperatures.append(driver.step())
    assert np.mean(temperatures[n_eq // 2:n_eq]) < 400  # pulled from 900 K to 300 K (e^(−Δt/τ) = 0.61 a step)
    assert len(set(temperatures[n_eq:])) == 1  # NVE free flight from the first step after equilibration
    plain = forecast(hot, tiny_model, n_eq, ForecastSettings(nve=True))
    assert units.temperature_k(units.kinetic_energy_ev(units.masses_amu(plain.numbers), units.velocities_from_ase(
        plain.get_velocities())), degrees_of_freedom(len(plain), True)) > 600


def test_position_noise_is_gaussian_per_element_keeps_the_centre_of_mass_and_is_its_own_stream(free_flight, water,
                                                                                              monkeypatch):
    """`TrajCast.position_noise_A`: N(0, σ_Z²) on every position after each step, σ per element, drawn per (seed,
    step, atom id) on a stream of its own (not the Langevin thermostat's draws), less its mass-weighted mean."""
    tiny_model, sigma = free_flight, {1: 2e-3, 8: 5e-4}
    monkeypatch.setattr(tiny_model, "position_noise_A", tiny_model.position_noise_A.clone())
    tiny_model.set_position_noise(sigma)
    settings = ForecastSettings(nve=True, seed=3)
    rng = np.random.default_rng(3)
    state = initial_state(water, tiny_model, settings, rng)
    before, velocities = state.positions + state.image @ state.cell, state.velocities.copy()
    serial_driver(tiny_model, state, settings, rng).step()
    noise = state.positions + state.image @ state.cell - before - velocities * tiny_model.dt_fs
    masses = units.masses_amu(state.numbers)
    for z, value in sigma.items():
        assert abs(noise[state.numbers == z].std() / value - 1) < 0.15
    np.testing.assert_allclose((masses[:, None] * noise).sum(0), 0.0, atol=1e-12)
    thermostat_draws = hashed_normals(3, 1, state.ids)
    assert abs(np.corrcoef(noise.ravel(), thermostat_draws.ravel())[0, 1]) < 0.15


def test_a_jump_in_temperature_at_the_start_is_named_once():
    from trajcast_dist.forecast import _FarStart

    lines = []
    far = _FarStart(300.0, ForecastSettings(), lines.append)
    far.check(5, 400.0)
    far.check(10, 557.0)
    far.check(12, 600.0)
    assert len(lines) == 1 and "T = 557 K at step 10" in lines[0] and "--equilibrate-ps 0.5" in lines[0]
    quiet = _FarStart(300.0, ForecastSettings(equilibrate_ps=0.5), lines.append)
    quiet.check(3, 900.0)
    late = _FarStart(300.0, ForecastSettings(), lines.append)
    late.check(21, 900.0)
    assert len(lines) == 1


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
