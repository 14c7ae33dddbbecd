"""The shipped default model: loads without network, declares what it is, and forecasts the demo box stably."""

import numpy as np
import pytest

from trajcast_dist import units
from trajcast_dist.dynamics.thermostat import degrees_of_freedom
from trajcast_dist.forecast import ForecastSettings, forecast
from trajcast_dist.io.checkpoint import load_model
from trajcast_dist.analysis.rdf import first_peak
from trajcast_dist.analysis.reference import read_reference_curves
from trajcast_dist.pretrained import DEFAULT_MODEL, default_model_path, reference_curves, shipped_models


def test_default_model_is_shipped_and_declares_species_cutoff_dt():
    assert DEFAULT_MODEL in shipped_models()
    model, meta = load_model(default_model_path())
    assert model.species == [1, 8]
    assert model.cutoff_A == pytest.approx(6.0) and model.dt_fs == pytest.approx(5.0)
    assert meta["trained"] is True and set(meta["statistics"]) >= {"displacement_rms_A", "avg_num_neighbors"}
    assert default_model_path().stat().st_size < 20e6
    # validated with the paper's global CSVR thermostat, which `forecast` then uses without flags; no start hold
    assert meta["thermostat"] == {"name": "csvr", "tau_fs": 50.0}
    # ... with the run-time settings the card and docs/validation.md report: √2 × the training input noise per
    # element after each step, and the velocity gains chosen with it
    assert model.position_noise_A.tolist() == pytest.approx([2 ** 0.5 * 2e-3, 2 ** 0.5 * 5e-4], rel=1e-12)
    assert model.velocity_gain.tolist() == pytest.approx([0.9965, 1.0023], rel=1e-12)


def test_md_reference_curves_ship_beside_the_card_and_look_like_water():
    path = reference_curves()
    assert path.parent == default_model_path().parent and path.stat().st_size < 300_000
    curves = read_reference_curves(path)
    # the MD run with the thermostat the default model names (CSVR τ = 50 fs): like is compared with like
    assert "nvt-csvr" in curves["source"] and "water_dt5.reference.json" in (path.parent / "water_dt5.md").read_text()
    r_peak, g_peak = first_peak(curves["rdf"].r_A, curves["rdf"].g["O-O"])
    assert r_peak == pytest.approx(2.75, abs=0.1) and 2.5 < g_peak < 3.5
    assert set(curves["vdos"].vdos) == {"O", "H", "all"} and set(curves["msd"].msd) == {"O", "H"}
    assert 0.8 < curves["msd"].D["O"] < 4.0 and abs(curves["temperature"].mean_K - 300.0) < 6.0


def test_model_list_says_where_the_validation_numbers_come_from(capsys):
    from trajcast_dist.cli.main import main

    assert main(["model", "list"]) == 0
    printed = capsys.readouterr().out
    assert "water_dt5 (default)" in printed and "water_dt5.md" in printed
    assert f"{reference_curves()}: LAMMPS SPC/Fw NVT-CSVR" in printed


def test_demo_box_forecast_stays_within_temperature_bounds(tmp_path):
    import ase.io

    from trajcast_dist.pretrained import WATER_192_MD

    atoms = ase.io.read(WATER_192_MD).repeat((2, 2, 2))
    model, _ = load_model(default_model_path())
    model.use_fast_inference()
    out = tmp_path / "demo.xyz"
    forecast(atoms, model, 20, ForecastSettings(temperature_K=300.0, tau_fs=50.0, seed=0, stride=5), output=out)
    frames = ase.io.read(out, ":")
    masses = units.masses_amu(atoms.numbers)
    temps = [units.temperature_k(units.kinetic_energy_ev(masses, units.velocities_from_ase(f.get_velocities())),
                                 degrees_of_freedom(len(atoms), True)) for f in frames]
    assert len(frames) == 5
    assert all(250.0 < t < 360.0 for t in temps), temps
    # molecules stay whole after 100 fs: every H keeps an O within 1.3 Å
    last = frames[-1]
    oxygens = np.flatnonzero(last.numbers == 8)
    nearest = [last.get_distances(h, oxygens, mic=True).min() for h in np.flatnonzero(last.numbers == 1)]
    assert max(nearest) < 1.3
