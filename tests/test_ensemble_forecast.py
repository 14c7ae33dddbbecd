"""`benchmarks/ensemble_forecast.py`: the mean of several models' outputs, run through the forecast CLI."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from helpers import predict, thermal_velocities

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ensemble_forecast import averaged  # noqa: E402


def _two_models(tiny_config, tiny_scales):
    from trajcast_dist.model import TrajCast

    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(TrajCast(tiny_config, [1, 8], scales=tiny_scales).to(torch.float64).eval())
    return models


def test_the_average_is_the_mean_of_the_members_and_keeps_the_momentum(tiny_config, tiny_scales, water):
    from trajcast_dist import units

    a, b = _two_models(tiny_config, tiny_scales)
    velocities = thermal_velocities(water.numbers, 300.0)
    args = (water.positions, velocities, water.numbers, water.cell[:], water.pbc)
    (da, va), (db, vb) = predict(a, *args), predict(b, *args)
    assert np.abs(va - vb).max() > 1e-4  # two different networks
    d, v = predict(averaged([a, b]), *args)
    np.testing.assert_allclose(d, (da + db) / 2, rtol=0, atol=1e-14)
    np.testing.assert_allclose(v, (va + vb) / 2, rtol=0, atol=1e-14)
    masses = units.masses_amu(water.numbers)[:, None]
    np.testing.assert_allclose((masses * v).sum(0), (masses * velocities).sum(0), rtol=0, atol=1e-12)


def test_members_of_different_cutoffs_are_refused(tiny_config, tiny_scales, tiny_model):
    from trajcast_dist.model import TrajCast

    other = TrajCast(dataclasses.replace(tiny_config, cutoff_A=tiny_config.cutoff_A + 1.0), [1, 8], scales=tiny_scales)
    with pytest.raises(SystemExit, match="differ in elements, cutoff"):
        averaged([tiny_model, other])


def test_a_model_averaged_with_itself_forecasts_as_the_model_alone(tiny_model, water, tmp_path):
    from trajcast_dist.io.checkpoint import save_model

    save_model(tmp_path / "m.pt", tiny_model)
    ase.io.write(tmp_path / "start.xyz", water)
    common = [str(tmp_path / "start.xyz"), "--steps", "3", "--stride", "1", "--temperature", "300", "--tau", "50",
              "--seed", "3", "--dtype", "float64", "--quiet"]
    alone = subprocess.run(["trajcast-dist-forecast", *common, "--model", str(tmp_path / "m.pt"),
                            "--output", str(tmp_path / "alone.xyz")], capture_output=True, text=True, timeout=300)
    assert alone.returncode == 0, alone.stderr
    both = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ensemble_forecast.py"), "forecast", "--members",
                           str(tmp_path / "m.pt"), str(tmp_path / "m.pt"), "--", *common,
                           "--output", str(tmp_path / "both.xyz")], capture_output=True, text=True, timeout=300)
    assert both.returncode == 0, both.stderr
    frames = [ase.io.read(tmp_path / name, index=":") for name in ("alone.xyz", "both.xyz")]
    assert len(frames[0]) == len(frames[1]) == 4
    for x, y in zip(*frames):
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.get_velocities(), y.get_velocities())


def test_mae_prints_each_member_and_an_average_below_their_mean(tiny_config, tiny_scales, tmp_path, capsys):
    import argparse

    from ensemble_forecast import mae
    from toy_store import write_toy_store

    from trajcast_dist.io.checkpoint import save_model

    paths = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for path, model in zip(paths, _two_models(tiny_config, tiny_scales)):
        save_model(path, model)
    store = write_toy_store(tmp_path / "toy.zarr", {"train": 2, "val": 2, "test": 2})
    mae(argparse.Namespace(members=[str(p) for p in paths], store=str(store), max_frames=2))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(paths[0]), str(paths[1]), "average"]
    d = [float(line.split("mae_d=")[1].split()[0]) for line in lines]
    assert d[2] < (d[0] + d[1]) / 2 and d[2] not in d[:2]  # |mean error| ≤ mean |error|, strict for two networks
