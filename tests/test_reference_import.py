"""`trajcast-dist model import`: models of the reference implementation (IBM/trajcast) run here exactly.

The fixtures in data/reference/ were written by `tools/reference_fixtures.py` with the reference code itself
(random-weight EfficientTrajCastModel / TrajCastModel, float64, one step and a 50-step NVE rollout of a periodic
water box); see that script for how they were made, including the reference's float32 one-hot.
"""

import shutil
import subprocess
from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest
import torch
from helpers import predict

from trajcast_dist.cli.main import main

DATA = Path(__file__).resolve().parent / "data" / "reference"
CASES = ["efficient_default", "efficient_zero_momenta", "trajcast_angular", "trajcast_drift"]
TIMEOUT_S = 180


def fixture(case):
    return dict(np.load(DATA / f"{case}.npz"))


def import_args(case, out, weights=None, architecture=None, type_map=None):
    f = fixture(case)
    type_map = type_map or ",".join(f"{z}:{t}" for z, t in f["type_map"])
    return ["model", "import", str(weights or DATA / f"{case}.pt"), "--architecture",
            str(architecture or DATA / f"{case}.yaml"), "--type-map", type_map, "--dt", str(float(f["dt_fs"])),
            "--out", str(out)]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Every fixture imported once through the command line."""
    root = tmp_path_factory.mktemp("imported")
    for case in CASES:
        assert main(import_args(case, root / f"{case}.pt")) == 0
    return root


def load(imported, case):
    from trajcast_dist.io.checkpoint import load_model

    return load_model(imported / f"{case}.pt")[0]


def relative_error(mine, reference):
    return float(np.abs(mine - reference).max() / np.abs(reference).max())


@pytest.mark.parametrize("case", CASES)
def test_one_step_matches_reference(imported, case):
    f = fixture(case)
    model = load(imported, case)
    displacement, velocity = predict(model, f["positions"], f["velocities"], f["numbers"], f["cell"],
                                   np.ones(3, bool))
    errors = relative_error(displacement, f["step_displacement"]), relative_error(velocity, f["step_velocity"])
    print(f"{case}: one step, max relative error Δr {errors[0]:.1e}, v {errors[1]:.1e}")
    assert max(errors) <= 1e-12
    # the stock reference rounds its velocity embedding through a float32 one-hot (tools/reference_fixtures.py)
    assert relative_error(displacement, f["stock_step_displacement"]) <= 1e-7


@pytest.mark.parametrize("case", CASES)
def test_nve_rollout_matches_reference(imported, case):
    from trajcast_dist.dynamics.state import SystemState
    from trajcast_dist.forecast import ForecastSettings, serial_driver

    f = fixture(case)
    model = load(imported, case)
    state = SystemState(f["positions"], f["velocities"], f["numbers"], f["cell"], np.ones(3, bool))
    driver = serial_driver(model, state, ForecastSettings(nve=True), np.random.default_rng(0))
    box = np.diag(f["cell"])
    worst = 0.0
    for reference in f["rollout_positions"]:
        driver.step()
        gap = state.positions - reference
        worst = max(worst, float(np.abs(gap - np.round(gap / box) * box).max()))  # either side of the cell face
    print(f"{case}: {len(f['rollout_positions'])}-step NVE rollout, max |Δr| {worst:.1e} Å")
    assert worst <= 1e-9
    assert np.abs(state.velocities - f["final_velocities"]).max() <= 1e-9


def test_imported_options_reach_the_model_file(imported):
    from trajcast_dist.io.checkpoint import read_metadata

    meta, _ = read_metadata(imported / "trajcast_drift.pt")
    config = meta["config"]
    assert config["gate_activation"] == "sigmoid" and config["bessel_epsilon_A"] == 1e-5
    assert config["velocity_basis"] == "interior" and config["velocity_max_A_per_fs"] == 0.08
    assert config["com_displacement"] == "remove_if_zero_momentum"
    assert config["net_lin_mom"] == [0.02, -0.01, 0.005] and config["net_ang_mom"] is None
    assert meta["provenance"]["reference_model"] == "TrajCastModel"
    assert meta["species"] == [1, 8] and meta["dt_fs"] == 5.0


def _error_line(capsys, argv) -> str:
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_unmappable_models_are_one_line_errors(tmp_path, capsys):
    case = "efficient_default"
    out = tmp_path / "m.pt"
    assert "types [0]" in _error_line(capsys, import_args(case, out, type_map="1:0"))
    flexible = {k.replace("_int_out.", "layers."): v for k, v in torch.load(DATA / f"{case}.pt").items()}
    torch.save(flexible, tmp_path / "flexible.pt")
    assert "FlexibleModel" in _error_line(capsys, import_args(case, out, weights=tmp_path / "flexible.pt"))
    metal = tmp_path / "metal.yaml"
    metal.write_text((DATA / f"{case}.yaml").read_text().replace("units: real", "units: metal"))
    assert "'real' units" in _error_line(capsys, import_args(case, out, architecture=metal))
    deeper = tmp_path / "deeper.yaml"
    deeper.write_text((DATA / f"{case}.yaml").read_text().replace("num_mp_layers: 2", "num_mp_layers: 3"))
    assert "mp_layer_2" in _error_line(capsys, import_args(case, out, architecture=deeper))
    relu = tmp_path / "relu.yaml"
    relu.write_text((DATA / f"{case}.yaml").read_text().replace("activation: silu", "activation: relu"))
    assert "only SiLU" in _error_line(capsys, import_args(case, out, architecture=relu))
    assert not out.exists()
    shutil.copy(DATA / f"{case}.yaml", out)
    assert "--overwrite" in _error_line(capsys, import_args(case, out))


@pytest.mark.mpi
def test_imported_model_runs_on_two_ranks_like_one(imported, tmp_path):
    """The imported model under `mpiexec -n 2 trajcast-dist-forecast` gives the serial trajectory."""
    from trajcast_dist.io.restart import load_restart

    f = fixture("trajcast_angular")
    atoms = ase.Atoms(numbers=f["numbers"], positions=f["positions"], cell=f["cell"], pbc=True)
    atoms.set_velocities(f["velocities"])
    ase.io.write(tmp_path / "water.xyz", atoms, format="extxyz")
    states = []
    for ranks in (1, 2):
        command = ["trajcast-dist-forecast", "water.xyz", "--model", str(imported / "trajcast_angular.pt"),
                   "--steps", "5", "--nve", "--output", f"out{ranks}.xyz", "--quiet"]
        proc = subprocess.run(["mpiexec", "-n", "2", *command] if ranks > 1 else command, capture_output=True,
                              text=True, timeout=TIMEOUT_S, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        states.append(load_restart(tmp_path / f"out{ranks}.xyz.restart.npz")[0])
    serial, distributed = states
    assert distributed.step == serial.step == 5
    unwrap = lambda s: s.positions + s.image @ s.cell  # noqa: E731
    assert np.abs(unwrap(distributed) - unwrap(serial)).max() <= 1e-9
    assert np.abs(distributed.velocities - serial.velocities).max() <= 1e-9
