"""Issue #15, training: a non-finite learning rate is one line and exit 2, and a run stopped by --max-steps
before its first epoch ends still validates and exports model.pt."""

import dataclasses
import math

import pytest

from trajcast_dist.config import load_config
from trajcast_dist.errors import UserError
from trajcast_dist.train import main as train_main
from trajcast_dist.training import train
from toy_store import write_toy_store

from conftest import ROOT
from test_train_loop import tiny

CONFIG = str(ROOT / "configs" / "tiny.yaml")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """4 steps per epoch, no test split."""
    return write_toy_store(tmp_path_factory.mktemp("data") / "small.zarr", {"train": 8, "val": 2}, seed=1)


@pytest.fixture(autouse=True)
def single_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_lr_not_finite_is_one_line(small, tmp_path, capsys, value):
    code = train_main(["--config", CONFIG, "--data", str(small), "--out", str(tmp_path / "run"), f"--lr={value}"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and "--lr" in err[0] and value in err[0], err
    assert not (tmp_path / "run").exists()


def test_config_lr_nan_is_refused():
    config = load_config(CONFIG)
    with pytest.raises(UserError, match="training.lr = nan"):
        dataclasses.replace(config.training, lr=math.nan).validate("test.yaml")


def test_pushforward_steps_below_one_is_refused():
    config = load_config(CONFIG)
    with pytest.raises(UserError, match="training.pushforward_steps = 0 must be ≥ 1"):
        dataclasses.replace(config.training, pushforward_steps=0).validate("test.yaml")


def test_max_steps_inside_the_first_epoch_validates_and_exports(small, tmp_path):
    lines = []
    result = train(tiny(small, tmp_path / "run", max_steps=1), progress=False, log=lines.append)
    assert result.global_step == 1 and math.isfinite(result.best_val_loss)
    assert (tmp_path / "run" / "model.pt").is_file() and result.model_path == tmp_path / "run" / "model.pt"
    assert any("stopped inside epoch 0 at step 1" in line for line in lines), lines


def test_train_is_a_subcommand_with_the_module_flags():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [Path(sys.executable).parent / "trajcast-dist", "train", "--help"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "trajcast-dist train" in result.stdout and "--config" in result.stdout and "--resume" in result.stdout


def test_old_backend_and_scale_keys_name_their_new_names(tmp_path):
    """The two backends have two names: torch.distributed's `training.dist_backend`, the tensor products'
    `training.tensor_backend` (a run-time choice, so not in the model's architecture); the data scales have their
    own section."""
    config = tmp_path / "old.yaml"
    for text, message in (("training:\n  backend: gloo\n", "training.backend is now training.dist_backend"),
                          ("model:\n  backend: cueq\n", "model.backend is now training.tensor_backend"),
                          ("training:\n  tensor_backend: cuda\n", "training.tensor_backend = 'cuda'; choose e3nn"),
                          ("model:\n  avg_num_neighbors: 30\n", "model.avg_num_neighbors is now scales.avg_num"),
                          ("scales:\n  temperature_K: -1\n", "scales.temperature_K = -1.0 must be > 0")):
        config.write_text(text)
        with pytest.raises(UserError, match=message):
            load_config(config)


@pytest.mark.parametrize("by_element", [{"Xx": 0.01}, {"H": -0.01}, {"H": math.inf}])
def test_noise_per_element_needs_element_symbols_and_finite_sigmas(by_element):
    config = load_config(CONFIG)
    with pytest.raises(UserError, match="noise_displacement_by_element .*e.g. {H: 0.003}"):
        dataclasses.replace(config.training, noise_displacement_by_element=by_element).validate("test.yaml")


def test_noise_for_an_element_the_data_lacks_is_one_line(small, tmp_path):
    """{N: σ} on water data would be silently unused: it stops before training instead."""
    from trajcast_dist.training import prepare

    config = tiny(small, tmp_path / "run", noise_displacement_by_element={"N": 0.002})
    with pytest.raises(UserError, match="noise_displacement_by_element names N, which .* do not hold"):
        prepare(config, 1)
