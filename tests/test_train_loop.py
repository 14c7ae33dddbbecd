"""Training loop on one process (issue #5): learning, exact resume, export → forecast, evaluate, bad input."""

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from trajcast_dist.cli.main import main
from trajcast_dist.config import load_config
from trajcast_dist.errors import UserError
from trajcast_dist.training import prepare, train
from trajcast_dist.training.checkpoint import load_state
from toy_store import write_toy_store

from conftest import ROOT


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_toy_store(tmp_path_factory.mktemp("data") / "toy.zarr", {"train": 16, "val": 2, "test": 2})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """4 steps per epoch, no test split."""
    return write_toy_store(tmp_path_factory.mktemp("data") / "small.zarr", {"train": 8, "val": 2}, seed=1)


@pytest.fixture(scope="module")
def trained(store, tmp_path_factory):
    """Three epochs of the tiny model on the toy store (shared by the tests that read its outputs)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    for name in ("RANK", "WORLD_SIZE"):
        assert name not in __import__("os").environ
    result = train(tiny(store, out, max_epochs=3), progress=False, log=lambda *a: None)
    return result, out


@pytest.fixture(autouse=True)
def single_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


def tiny(store, out, **training):
    config = load_config(ROOT / "configs" / "tiny.yaml")
    fields = dict(data=str(store), out_dir=str(out), threads=1, log_every=1000) | training
    return dataclasses.replace(config, training=dataclasses.replace(config.training, **fields))


def weights(path):
    return load_state(path)["model"]


def max_difference(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point() and a[k].numel())


def test_loss_decreases_on_learnable_toy_target(trained):
    result, out = trained
    history = load_state(out / "checkpoints" / "last.pt")["history"]
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert history[-1]["val_loss"] < 0.5 * history[0]["val_loss"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert result.model_path.is_file() and result.test_summary["n_atoms"] == 2 * 24
    csv = (out / "train_log.csv").read_text().splitlines()
    assert csv[0].startswith("epoch,step,lr,train_loss,val_loss") and len(csv) == 4
    assert (out / "learning_curves.png").stat().st_size > 1000


def test_resume_mid_epoch_continues_exactly(small, tmp_path):
    """6 steps straight == 3 steps, stop, resume to 6 (crosses the end of epoch 0 at step 4)."""
    train(tiny(small, tmp_path / "straight", max_steps=6), progress=False, log=lambda *a: None)
    train(tiny(small, tmp_path / "split", max_steps=3), progress=False, log=lambda *a: None)
    assert load_state(tmp_path / "split" / "checkpoints" / "last.pt")["step_in_epoch"] == 3
    train(tiny(small, tmp_path / "split", max_steps=6), resume="auto", progress=False, log=lambda *a: None)
    a, b = (load_state(tmp_path / run / "checkpoints" / "last.pt") for run in ("straight", "split"))
    assert max_difference(a["model"], b["model"]) == 0.0
    assert a["global_step"] == b["global_step"] == 6 and a["epoch"] == b["epoch"] == 1
    timing = ("epoch_s", "samples_per_s")
    assert [{k: v for k, v in row.items() if k not in timing} for row in a["history"]] == \
        [{k: v for k, v in row.items() if k not in timing} for row in b["history"]]
    torch.testing.assert_close(a["train_sums"], b["train_sums"], rtol=0, atol=1e-12)


def test_ema_weights_are_exported(small, tmp_path):
    train(tiny(small, tmp_path / "run", max_epochs=1, ema_decay=0.9), progress=False, log=lambda *a: None)
    state = load_state(tmp_path / "run" / "checkpoints" / "best.pt")
    from trajcast_dist.io.checkpoint import load_model

    model, meta = load_model(tmp_path / "run" / "model.pt")
    exported = [p.detach() for p in model.parameters()]
    for p, shadow in zip(exported, state["ema"]["shadow"]):
        torch.testing.assert_close(p, shadow, rtol=0, atol=0)
    raw = [state["model"][name] for name, _ in model.named_parameters()]
    assert max(float((p - r).abs().max()) for p, r in zip(exported, raw)) > 1e-6
    assert meta["training"]["ema"] is True


def test_exported_model_forecasts_and_evaluates(trained, store, tmp_path, capsys):
    import ase.io

    from trajcast_dist import units
    from trajcast_dist.structures import water_box

    model_path = trained[1] / "model.pt"
    from trajcast_dist.io.checkpoint import read_metadata

    meta, _ = read_metadata(model_path)
    assert meta["trained"] and meta["species"] == [1, 8] and meta["dt_fs"] == 5.0
    assert set(meta["statistics"]) >= {"displacement_rms_A", "velocity_rms_A_per_fs", "avg_num_neighbors"}
    assert meta["test_metrics"]["n_atoms"] == 48 and meta["training"]["world_size"] == 1

    atoms = water_box(2, 12.4172 / 2, seed=3)
    atoms.set_velocities(units.velocities_to_ase(np.random.default_rng(0).normal(0, 0.01, (len(atoms), 3))))
    ase.io.write(tmp_path / "start.xyz", atoms)
    out = tmp_path / "forecast.xyz"
    assert main(["forecast", str(tmp_path / "start.xyz"), "--model", str(model_path), "--steps", "2",
                 "--stride", "1", "--output", str(out), "--quiet"]) == 0
    frames = ase.io.read(out, ":")
    assert len(frames) >= 2 and np.isfinite(frames[-1].positions).all()

    capsys.readouterr()
    assert main(["evaluate", str(model_path), str(store), "--split", "test", "--json", str(tmp_path / "f.json")]) == 0
    table = capsys.readouterr().out
    assert "Abs [1e-5 Å]" in table and "Rel [%]" in table and "\n  H " in table and "\n  O " in table
    assert "fast path" in table  # as `forecast` runs; the exact path gives the same errors
    assert main(["evaluate", str(model_path), str(store), "--split", "test", "--exact", "--json",
                 str(tmp_path / "e.json")]) == 0
    fast, exact = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("f", "e"))
    assert fast["mae_d"] == pytest.approx(exact["mae_d"], rel=1e-9) and fast["mae_v"] == pytest.approx(exact["mae_v"],
                                                                                                       rel=1e-9)


def test_bad_inputs_fail_before_training(store, tmp_path):
    with pytest.raises(UserError, match="not a zarr store"):
        train(tiny(store, tmp_path / "a", data=str(tmp_path / "missing.zarr")), progress=False)
    with pytest.raises(UserError, match="contains H but training.species"):
        prepare(tiny(store, tmp_path / "b", species=[8]))
    with pytest.raises(UserError, match="does not divide over 3 ranks"):
        prepare(tiny(store, tmp_path / "c"), world_size=3)
    with pytest.raises(UserError, match="--resume: .* not found"):
        prepare(tiny(store, tmp_path / "d"), resume="auto")
    config = tiny(store, tmp_path / "e")
    config.model.dt_fs = 2.0
    with pytest.raises(UserError, match="model.dt_fs"):
        prepare(config)
    with pytest.raises(UserError, match="deepspeed config .* not found"):
        prepare(tiny(store, tmp_path / "f", engine="deepspeed", deepspeed_config=str(tmp_path / "none.json")))
    assert not (tmp_path / "a").exists()


def test_existing_run_is_not_overwritten_without_resume(trained, store):
    with pytest.raises(UserError, match="pass --resume"):
        prepare(tiny(store, trained[1]))


def test_non_finite_loss_stops_with_the_frame(tmp_path):
    bad = write_toy_store(tmp_path / "bad.zarr", frames={"train": 4, "val": 2}, corrupt=("train", 1))
    with pytest.raises(FloatingPointError, match=r"non-finite training loss .*frames \[.*1.*\]"):
        train(tiny(bad, tmp_path / "run", max_epochs=1), progress=False, log=lambda *a: None)


def test_cli_flags_override_config(store, tmp_path, capsys):
    from trajcast_dist.train import main as train_main

    assert train_main(["--config", str(ROOT / "configs" / "tiny.yaml"), "--data", str(store), "--check",
                       "--nproc", "2"]) == 0
    assert "global batch 2 over 2 rank(s)" in capsys.readouterr().out
    assert train_main(["--config", str(ROOT / "configs" / "tiny.yaml"), "--data", str(store), "--check",
                       "--nproc", "4"]) == 2
    assert "does not divide over 4 ranks" in capsys.readouterr().err


def test_init_from_starts_at_the_model_weights_with_a_new_lr(trained, store, tmp_path, capsys):
    """Fine-tuning: a new run from an exported model's weights, fresh optimiser at --lr; mismatches are named."""
    from trajcast_dist.io.checkpoint import read_metadata
    from trajcast_dist.train import main as train_main

    model_path = trained[1] / "model.pt"
    base = ["--config", str(ROOT / "configs" / "tiny.yaml"), "--data", str(store), "--threads", "1", "--quiet"]
    assert train_main([*base, "--out", str(tmp_path / "zero"), "--init-from", str(model_path), "--lr", "1e-12",
                       "--max-steps", "1"]) == 0
    state = load_state(tmp_path / "zero" / "checkpoints" / "last.pt")
    assert state["scheduler"]["_last_lr"] == [1e-12] and state["global_step"] == 1
    start = read_metadata(model_path)[1]
    assert max_difference(state["model"], start) < 1e-9  # one step at lr 1e-12 leaves the given weights
    # ... and the statistics they were learnt with, not those of the store it is fine-tuned on
    other = write_toy_store(tmp_path / "hot.zarr", {"train": 4, "val": 2}, temperature_K=400.0, seed=5)
    assert train_main([*base, "--data", str(other), "--out", str(tmp_path / "hot"), "--init-from", str(model_path),
                       "--lr", "1e-12", "--max-steps", "1"]) == 0
    learnt, tuned = (load_state(p)["config"]["scales"] for p in (trained[1] / "checkpoints" / "last.pt",
                                                                 tmp_path / "hot" / "checkpoints" / "last.pt"))
    for key in ("displacement_rms_A", "velocity_rms_A_per_fs", "temperature_K", "avg_num_neighbors"):
        assert tuned[key] == learnt[key], key
    # ... and keeps them when resumed (the loss is normalised by them), not this store's
    assert train_main([*base, "--data", str(other), "--out", str(tmp_path / "hot"), "--init-from", str(model_path),
                       "--lr", "1e-12", "--max-steps", "2", "--resume"]) == 0
    assert load_state(tmp_path / "hot" / "checkpoints" / "last.pt")["config"]["scales"] == tuned
    # --resume takes the weights from the checkpoint: the init file is neither read nor needed
    assert train_main([*base, "--out", str(tmp_path / "zero"), "--init-from", str(tmp_path / "gone.pt"), "--lr",
                       "1e-12", "--max-steps", "2", "--resume"]) == 0
    assert load_state(tmp_path / "zero" / "checkpoints" / "last.pt")["global_step"] == 2
    fresh = load_state(trained[1] / "checkpoints" / "last.pt")["history"][0]["val_loss"]
    train_main([*base, "--out", str(tmp_path / "tuned"), "--init-from", str(model_path), "--lr", "1e-4",
                "--epochs", "1"])
    tuned = load_state(tmp_path / "tuned" / "checkpoints" / "last.pt")["history"][0]["val_loss"]
    assert tuned < 0.5 * fresh  # starts where the model was, not from random weights

    capsys.readouterr()
    assert train_main([*base, "--out", str(tmp_path / "bad"), "--init-from", str(model_path), "--check"]) == 0
    wider = tmp_path / "wider.yaml"
    wider.write_text((ROOT / "configs" / "tiny.yaml").read_text().replace("num_layers: 2", "num_layers: 3"))
    assert train_main(["--config", str(wider), "--data", str(store), "--out", str(tmp_path / "bad"),
                       "--init-from", str(model_path), "--check"]) == 2
    assert "its model differs from the config in num_layers (2 vs 3)" in capsys.readouterr().err
    assert train_main([*base, "--out", str(tmp_path / "bad"), "--init-from", str(tmp_path / "none.pt"),
                       "--check"]) == 2
    assert "none.pt not found" in capsys.readouterr().err


def test_calibration_restores_the_kinetic_energy_of_held_out_pairs(trained, store, tmp_path, capsys):
    """`model calibrate` measures ⟨|v̂′|²⟩/⟨|v′|²⟩ per element on a split and stores gains that bring it to 1; the
    weights stay as they were, forecast says it runs with them, and a restart of the uncalibrated model does not
    continue with the calibrated one."""
    import ase.io

    from trajcast_dist.data.store import PairStore
    from trajcast_dist.io.checkpoint import load_model
    from trajcast_dist.structures import water_box
    from trajcast_dist.training.calibration import kinetic_ratios

    model_path, calibrated = trained[1] / "model.pt", tmp_path / "calibrated.pt"
    assert main(["model", "calibrate", str(model_path), str(store), "--split", "val", "--out", str(calibrated)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^H +\d\.\d{5} ± \d\.\d{5} +gain \d\.\d{5}$", out, re.M) and re.search(r"^O +\d", out, re.M)
    before, meta = load_model(model_path)
    after, cal_meta = load_model(calibrated)
    assert cal_meta["weights_sha256"] == meta["weights_sha256"] and "velocity_gain" not in after.state_dict()
    raw = kinetic_ratios(before, PairStore(store), "val")
    fixed = kinetic_ratios(after, PairStore(store), "val")
    assert all(abs(r.ratio - 1) > 1e-3 for r in raw.values())  # the check below is not trivially met
    assert after.velocity_gain.tolist() == pytest.approx([raw[1].gain, raw[8].gain], rel=1e-8)  # fast path measured
    assert all(r.ratio == pytest.approx(1, abs=2e-3) for r in fixed.values()), {z: r.ratio for z, r in fixed.items()}
    assert "gain        H×" in (main(["model", "info", str(calibrated)]), capsys.readouterr().out)[1]

    ase.io.write(tmp_path / "start.xyz", water_box(2, 12.4172 / 2, seed=3))
    run = ["--steps", "1", "--quiet", "--threads", "1"]
    assert main(["forecast", str(tmp_path / "start.xyz"), "--model", str(calibrated), "--output",
                 str(tmp_path / "a.xyz"), *run]) == 0
    assert "velocity gain H×" in capsys.readouterr().out
    assert main(["forecast", str(tmp_path / "start.xyz"), "--model", str(model_path), "--output",
                 str(tmp_path / "b.xyz"), *run]) == 0
    capsys.readouterr()
    assert main(["forecast", "--restart", str(tmp_path / "b.xyz.restart.npz"), "--model", str(calibrated),
                 "--output", str(tmp_path / "c.xyz"), *run]) == 2
    assert "differs in velocity_gain" in capsys.readouterr().err

    # asked for, a model trained with input position noise σ_r gets position noise √2 σ_r (TrajCast.position_noise_A)
    from trajcast_dist.io.checkpoint import copy_with_metadata

    training = {**meta["training"], "training_config": {**meta["training"]["training_config"],
                                                        "noise_displacement_A": 2e-3}}
    copy_with_metadata(model_path, tmp_path / "noisy.pt", {"training": training})
    assert main(["model", "calibrate", str(tmp_path / "noisy.pt"), str(store), "--max-frames", "2", "--out",
                 str(tmp_path / "noisy_cal.pt"), "--quiet", "--position-noise"]) == 0
    assert "position noise σ = 0.00283 Å" in capsys.readouterr().out
    assert load_model(tmp_path / "noisy_cal.pt")[0].position_noise_A.tolist() == pytest.approx([2 ** 0.5 * 2e-3] * 2,
                                                                                              rel=1e-12)
    half = ["model", "calibrate", str(tmp_path / "noisy.pt"), "--gain", "H=0.995,O=1.0025", "--out",
            str(tmp_path / "half.pt"), "--position-noise"]
    assert main([*half, "0.5"]) == 0 and "(0.5 × √2 × the training input noise)" in capsys.readouterr().out
    assert load_model(tmp_path / "half.pt")[0].position_noise_A.tolist() == pytest.approx([2 ** -0.5 * 2e-3] * 2,
                                                                                        rel=1e-12)
    assert main([*half, "0", "--overwrite"]) == 2 and "--position-noise 0.0 × √2 σ_r: must be a finite number > 0" in \
        capsys.readouterr().err
    assert main(["forecast", str(tmp_path / "start.xyz"), "--model", str(tmp_path / "noisy_cal.pt"), "--output",
                 str(tmp_path / "d.xyz"), *run]) == 0
    assert "position noise 0.00283 Å" in capsys.readouterr().out
    assert main(["forecast", "--restart", str(tmp_path / "a.xyz.restart.npz"), "--model",
                 str(tmp_path / "noisy_cal.pt"), "--output", str(tmp_path / "e.xyz"), *run]) == 2
    assert "position_noise_A" in capsys.readouterr().err


def test_calibrate_writes_gains_given_by_hand_and_checks_them(trained, store, tmp_path, capsys):
    """`model calibrate --gain H=..,O=..`: gains chosen from rollouts (the shipped model's) go into the file as
    given; a missing element, a non-positive gain or a store beside --gain are one-line errors."""
    from trajcast_dist.io.checkpoint import load_model

    model_path, out = trained[1] / "model.pt", tmp_path / "hand.pt"
    assert main(["model", "calibrate", str(model_path), "--gain", "H=0.996,O=1.0035", "--out", str(out)]) == 0
    model, meta = load_model(out)
    assert model.velocity_gain.tolist() == pytest.approx([0.996, 1.0035], rel=1e-12)
    assert meta["velocity_gain_source"] == {"set": "H=0.996,O=1.0035"}
    assert not model.position_noise_A.any()
    capsys.readouterr()

    # with --position-noise, √2 × each element's training input noise (noise_displacement_by_element wins)
    from trajcast_dist.io.checkpoint import copy_with_metadata

    config = {**meta["training"]["training_config"], "noise_displacement_A": 5e-4,
              "noise_displacement_by_element": {"H": 2e-3}}
    copy_with_metadata(out, tmp_path / "noisy.pt", {"training": {**meta["training"], "training_config": config}})
    assert main(["model", "calibrate", str(tmp_path / "noisy.pt"), "--gain", "H=1,O=1", "--position-noise",
                 "--out", str(tmp_path / "noisy_hand.pt")]) == 0
    assert "position noise σ = H 0.00283 O 0.000707 Å per step" in capsys.readouterr().out
    assert load_model(tmp_path / "noisy_hand.pt")[0].position_noise_A.tolist() == pytest.approx(
        [2 ** 0.5 * 2e-3, 2 ** 0.5 * 5e-4], rel=1e-12)
    assert main(["model", "info", str(tmp_path / "noisy_hand.pt")]) == 0
    assert "pos. noise  σ = H 0.00283 O 0.000707 Å" in capsys.readouterr().out
    for bad, message in ((["--gain", "H=0.996"], "one gain for each element of the model (H,O)"),
                         (["--gain", "H=0.996,O=-1"], "'O=-1' is not ELEMENT=GAIN"),
                         (["--gain", "H=1,Xx=1"], "'Xx=1' is not ELEMENT=GAIN"),
                         ([str(store), "--gain", "H=1,O=1"], "not both"), ([], "not both")):
        assert main(["model", "calibrate", str(model_path), *bad, "--out", str(tmp_path / "x.pt")]) == 2
        assert message in capsys.readouterr().err
