"""The CUDA paths (skipped where no GPU is visible, as in CI; run on a GPU machine): a model, a forecast and a
training run give on the GPU what they give on the CPU, and cuEquivariance's CUDA kernels reproduce the e3nn
reference on the same weights."""

import dataclasses
import os
import shutil
import subprocess
import sys

import ase.io
import numpy as np
import pytest
import torch
from helpers import thermal_velocities

from trajcast_dist import units
from trajcast_dist.cli.main import main
from trajcast_dist.graph import build_graph
from trajcast_dist.io.restart import load_restart
from trajcast_dist.structures import water_box

from conftest import ROOT
from test_forecast_cli import model_file, water_file  # noqa: F401 (the same fixtures)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _predict(model, atoms, device, dtype=torch.float64):
    model = model.to(device=device, dtype=dtype)
    graph = build_graph(atoms.positions, thermal_velocities(atoms.numbers, 300.0, 1), model.species_index(atoms.numbers),
                        units.masses_amu(atoms.numbers), atoms.cell.array, True, model.cutoff_A, dtype=dtype,
                        device=device)
    with torch.no_grad():
        return [t.double().cpu().numpy() for t in model(graph)]


def _close(actual, expected, relative):
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(a, b, rtol=0, atol=relative * np.abs(b).max())


@pytest.mark.parametrize("backend", ["e3nn", "cueq"])
def test_model_on_cuda_matches_e3nn_on_cpu(tiny_config, tiny_scales, backend):
    """float64 to 1e-10 relative; float32 to 1e-5 (the float32 rounding of a 3-layer model)."""
    if backend == "cueq":
        pytest.importorskip("cuequivariance_torch")
    from trajcast_dist.model import TrajCast

    torch.manual_seed(0)
    reference = TrajCast(tiny_config, [1, 8], scales=tiny_scales).eval()
    model = TrajCast(tiny_config, [1, 8], backend, tiny_scales).eval()
    model.load_state_dict(reference.state_dict())
    atoms = water_box(molecules_per_side=4, box_A=12.4172, seed=3)
    expected = _predict(reference, atoms, "cpu")
    _close(_predict(model, atoms, "cuda"), expected, 1e-10)
    _close(_predict(model, atoms, "cuda", torch.float32), expected, 1e-5)


def _forecast(model_file, water_file, out, *flags):
    assert main(["forecast", str(water_file), "--model", str(model_file), "--steps", "5", "--dtype", "float64",
                 "--seed", "3", "--output", str(out), *flags]) == 0
    return load_restart(f"{out}.restart.npz")[0]


@pytest.mark.parametrize("path", ["--fast", "--exact"])
def test_forecast_on_cuda_matches_cpu(model_file, water_file, tmp_path, path):
    """Five steps under the default CSVR thermostat (the same random stream on both devices): ≤ 1e-9 relative."""
    cpu = _forecast(model_file, water_file, tmp_path / "cpu.xyz", path, "--device", "cpu", "--threads", "1")
    cuda = _forecast(model_file, water_file, tmp_path / "cuda.xyz", path, "--device", "cuda")
    np.testing.assert_allclose(cuda.positions, cpu.positions, rtol=0, atol=1e-9 * np.abs(cpu.positions).max())
    np.testing.assert_allclose(cuda.velocities, cpu.velocities, rtol=0, atol=1e-9 * np.abs(cpu.velocities).max())


def test_gpu_default_is_the_exact_path_and_cueq_fast_is_one_line(model_file, water_file, tmp_path, capsys):
    """On a GPU the tabulated path is the slower one (H200: 3-4x), so `forecast` runs the exact path there."""
    assert main(["forecast", str(water_file), "--model", str(model_file), "--steps", "1", "--device", "cuda",
                 "--output", str(tmp_path / "a.xyz")]) == 0
    assert "path exact" in capsys.readouterr().out.splitlines()[0]
    assert main(["forecast", str(water_file), "--model", str(model_file), "--steps", "1", "--device", "cuda",
                 "--fast", "--backend", "cueq", "--output", str(tmp_path / "b.xyz")]) == 2
    assert "--fast with --backend cueq on a GPU" in capsys.readouterr().err


def test_training_on_cuda_matches_cpu(tmp_path):
    """Four float64 steps of the tiny model on the toy store: the same weights to 1e-9 relative."""
    from toy_store import write_toy_store

    from trajcast_dist.config import load_config
    from trajcast_dist.training import train
    from trajcast_dist.training.checkpoint import load_state

    store = write_toy_store(tmp_path / "toy.zarr", {"train": 8, "val": 2})
    config = load_config(ROOT / "configs" / "tiny.yaml")
    weights = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"run_on_{device}"
        fields = dict(data=str(store), out_dir=str(out), threads=1, log_every=1000, max_steps=4, device=device)
        train(dataclasses.replace(config, training=dataclasses.replace(config.training, **fields)), progress=False,
              log=lambda *a: None)
        weights[device] = load_state(out / "checkpoints" / "last.pt")["model"]
    for name, value in weights["cpu"].items():
        if value.is_floating_point() and value.numel():
            np.testing.assert_allclose(weights["cuda"][name].cpu().numpy(), value.numpy(), rtol=0,
                                       atol=1e-9 * max(float(value.abs().max()), 1.0), err_msg=name)


@pytest.mark.mpi
def test_two_ranks_on_cuda_match_one_process(model_file, tmp_path):
    """Ghost exchange through host memory with both ranks on one GPU: the serial trajectory to ≤ 1e-9 Å."""
    if shutil.which("mpiexec") is None:
        pytest.skip("no mpiexec")
    start = tmp_path / "box.xyz"
    ase.io.write(start, water_box(molecules_per_side=4, box_A=12.4172, seed=5))
    flags = ["--model", str(model_file), "--steps", "3", "--dtype", "float64", "--seed", "3", "--device", "cuda",
             "--exact"]
    serial = _forecast(model_file, start, tmp_path / "serial.xyz", *flags[2:])
    root_ok = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}  # Open MPI, on GPU machines
    result = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-m", "trajcast_dist.cli.main", "forecast",
                             str(start), *flags, "--output", str(tmp_path / "two.xyz")],
                            capture_output=True, text=True, timeout=300, env=dict(os.environ, **root_ok))
    assert result.returncode == 0, result.stderr[-2000:]
    two = load_restart(f"{tmp_path / 'two.xyz'}.restart.npz")[0]
    unwrapped = [state.positions + state.image @ state.cell for state in (two, serial)]
    np.testing.assert_allclose(*unwrapped, rtol=0, atol=1e-9)
