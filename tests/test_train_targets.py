"""What the network learns (issue #13): outputs relative to the ballistic baseline, per-species scales, the
time-reversal and input-noise augmentations of the training pairs, and pushforward inputs."""

import copy
import dataclasses

import numpy as np
import pytest
import torch
from helpers import predict, thermal_velocities

from trajcast_dist.config import Scales, load_config
from trajcast_dist.errors import UserError
from trajcast_dist.model import TrajCast
from trajcast_dist.training import prepare, train
from trajcast_dist.training.targets import Augmentation, augment, pushforward, target_rms
from toy_store import write_toy_store

from conftest import ROOT


def _model(tiny_config, scales=None, **options):
    torch.manual_seed(0)
    return TrajCast(dataclasses.replace(tiny_config, **options), [1, 8], scales=scales).to(torch.float64).eval()


def _zero_readout(model):
    with torch.no_grad():
        for linear in (model.readout.displacement, model.readout.velocity):
            linear.weight.zero_()
    return model


def test_ballistic_baseline_with_a_silent_network_is_free_flight(tiny_config, water):
    model = _zero_readout(_model(tiny_config, baseline="ballistic"))
    velocities = thermal_velocities(water.numbers, 300.0, seed=3)
    displacement, velocity = predict(model, water.positions, velocities, water.numbers, water.cell.array, True)
    np.testing.assert_allclose(displacement, velocities * tiny_config.dt_fs, rtol=0, atol=1e-15)
    np.testing.assert_allclose(velocity, velocities, rtol=0, atol=1e-15)
    paper = _zero_readout(_model(tiny_config))
    assert np.abs(predict(paper, water.positions, velocities, water.numbers, water.cell.array, True)[0]).max() == 0


def test_per_species_scales_multiply_each_species_outputs(tiny_config, water):
    scales = Scales(species_displacement_rms_A=[0.05, 0.005], species_velocity_rms_A_per_fs=[0.02, 0.002])
    plain, per_species = _model(tiny_config), _model(tiny_config, scales, per_species_scale=True)
    species = torch.tensor([0, 1, 1, 0])
    d_plain, v_plain = plain.readout.scales(species)
    d_scaled, v_scaled = per_species.readout.scales(species)
    assert torch.all(d_plain == scales.displacement_rms_A)
    assert torch.all(v_plain == scales.velocity_rms_A_per_fs)
    torch.testing.assert_close(d_scaled.squeeze(1), torch.tensor([0.05, 0.005, 0.005, 0.05], dtype=torch.float64))
    torch.testing.assert_close(v_scaled.squeeze(1), torch.tensor([0.02, 0.002, 0.002, 0.02], dtype=torch.float64))
    h = torch.randn(4, per_species.readout.irreps_in.dim, dtype=torch.float64)
    ratio = per_species.readout(h, species)[0] / plain.readout(h, species)[0]
    torch.testing.assert_close(ratio, (d_scaled / d_plain).expand(4, 3))
    with pytest.raises(UserError, match="species_displacement_rms_A"):
        _model(tiny_config, per_species_scale=True)


class _Frames:
    """A stand-in pair store of given frames (only what `target_rms` reads)."""

    def __init__(self, frames):
        self.frames = frames

    def n_frames(self, split):
        return len(self.frames)

    def frame(self, split, index):
        return self.frames[index]


def _frame(rng, index=0, n=6):
    species = np.array([8, 1, 1] * (n // 3))
    return {"positions": rng.uniform(0, 8, (n, 3)), "velocities": rng.normal(0, 0.01, (n, 3)), "species": species,
            "target_displacement": rng.normal(0, 0.05, (n, 3)), "target_velocity": rng.normal(0, 0.01, (n, 3)),
            "cell": np.eye(3) * 8, "pbc": np.array([True] * 3), "index": index}


def test_target_rms_per_species_and_after_the_baseline(rng):
    frames = [_frame(rng, k) for k in range(5)]
    stats = target_rms(_Frames(frames), [1, 8], 5.0, "ballistic")
    residual = np.concatenate([f["target_displacement"] - 5.0 * f["velocities"] for f in frames])
    species = np.concatenate([f["species"] for f in frames])
    assert stats["displacement_rms_A"] == pytest.approx(np.sqrt(np.mean(residual ** 2)), rel=1e-12)
    assert stats["species_displacement_rms_A"][1] == pytest.approx(np.sqrt(np.mean(residual[species == 8] ** 2)),
                                                                    rel=1e-12)
    v = np.concatenate([f["target_velocity"] for f in frames])
    plain = target_rms(_Frames(frames), [1, 8], 5.0, "none")
    assert plain["species_velocity_rms_A_per_fs"][0] == pytest.approx(np.sqrt(np.mean(v[species == 1] ** 2)),
                                                                       rel=1e-12)


def test_time_reversal_gives_the_backward_pair_and_twice_the_original(rng):
    frame = _frame(rng, index=7)
    reverse = Augmentation(time_reversal=1.0)
    back = augment([frame], 0, 1, reverse)[0]
    np.testing.assert_allclose(back["positions"], frame["positions"] + frame["target_displacement"])
    np.testing.assert_allclose(back["velocities"], -frame["target_velocity"])
    np.testing.assert_allclose(back["positions"] + back["target_displacement"], frame["positions"])
    np.testing.assert_allclose(back["target_velocity"], -frame["velocities"])
    again = augment([back], 0, 1, reverse)[0]
    for key in ("positions", "velocities", "target_displacement", "target_velocity"):
        np.testing.assert_allclose(again[key], frame[key], rtol=0, atol=1e-15)
    assert augment([frame], 0, 1, Augmentation())[0] is frame


def test_noise_moves_the_input_but_keeps_the_true_next_state(rng):
    frame = _frame(rng, index=3)
    noisy = Augmentation(noise_displacement_A=0.01, noise_velocity_A_per_fs=0.001)
    out = augment([frame], 2, 5, noisy)[0]
    shift = out["positions"] - frame["positions"]
    assert 0.005 < shift.std() < 0.02 and 0.0005 < (out["velocities"] - frame["velocities"]).std() < 0.002
    np.testing.assert_allclose(out["positions"] + out["target_displacement"],
                               frame["positions"] + frame["target_displacement"], rtol=0, atol=1e-14)
    np.testing.assert_array_equal(out["target_velocity"], frame["target_velocity"])
    np.testing.assert_array_equal(augment([frame], 2, 5, noisy)[0]["positions"], out["positions"])
    assert not np.array_equal(augment([frame], 3, 5, noisy)[0]["positions"], out["positions"])


def test_noise_per_element_replaces_the_global_sigma_for_that_element(rng):
    frame = _frame(rng, index=3, n=600)
    species = np.asarray(frame["species"])
    noisy = Augmentation(noise_displacement_A=0.001, noise_displacement_by_Z=((1, 0.02),))
    shift = augment([frame], 2, 5, noisy)[0]["positions"] - frame["positions"]
    assert 0.015 < shift[species == 1].std() < 0.025 and 0.0007 < shift[species != 1].std() < 0.0013
    same = Augmentation(noise_displacement_A=0.001, noise_displacement_by_Z=((1, 0.001),))
    np.testing.assert_array_equal(augment([frame], 2, 5, same)[0]["positions"],
                                  augment([frame], 2, 5, Augmentation(noise_displacement_A=0.001))[0]["positions"])


def test_augmentation_from_the_training_settings_names_elements_by_atomic_number():
    """One reading of `training:` for the trainer and for `model calibrate --position-noise` (a model file's dict)."""
    settings = {"time_reversal": 0.5, "noise_displacement_A": 1e-3, "noise_velocity_A_per_fs": 2e-4,
                "noise_displacement_by_element": {"H": 2e-3}}
    assert Augmentation.from_training(settings) == Augmentation(0.5, 1e-3, 2e-4, ((1, 2e-3),))
    assert Augmentation.from_training({}) == Augmentation()


def _trajectory(rng, n_frames=4):
    """Consecutive pairs of one trajectory, positions wrapped into the cell as a pair store holds them."""
    frames = [_frame(rng, 0)]
    for k in range(1, n_frames):
        before = frames[-1]
        frames.append({**_frame(rng, k), "positions": (before["positions"] + before["target_displacement"]) % 8.0,
                       "velocities": before["target_velocity"]})
    return frames


def _truth(frames):
    return [(f["target_displacement"], f["target_velocity"]) for f in frames]


def test_pushforward_keeps_the_true_next_state_whatever_the_forecast(rng):
    frames = _trajectory(rng)
    store = _Frames(frames)
    # a perfect model gives back the pairs themselves (up to the lattice vectors of the wrapping)
    same = pushforward(frames[1:], store, "train", _truth, 1.0, epoch=0, seed=1)
    for out, frame in zip(same, frames[1:]):
        assert out["pushforward"]
        np.testing.assert_allclose(out["positions"], frame["positions"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(out["target_displacement"], frame["target_displacement"], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(out["velocities"], frame["velocities"])
    # a model that errs by δ: the input is off by δ, the target (the true state after the pair) is not
    error = rng.normal(0, 0.01, frames[0]["positions"].shape)
    wrong = lambda fs: [(d + error, v + 0.1 * error) for d, v in _truth(fs)]  # noqa: E731
    out, frame = pushforward([frames[2]], store, "train", wrong, 1.0, epoch=0, seed=1)[0], frames[2]
    np.testing.assert_allclose(out["positions"] - frame["positions"], error, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["positions"] + out["target_displacement"],
                               frame["positions"] + frame["target_displacement"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["velocities"], frame["velocities"] + 0.1 * error, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out["target_velocity"], frame["target_velocity"])
    # a pushforward input is not time-reversed: the model's forecast is no state of the dynamics
    np.testing.assert_array_equal(augment([out], 0, 1, Augmentation(time_reversal=1.0))[0]["positions"],
                                  out["positions"])


def test_pushforward_unrolls_several_steps_and_keeps_the_true_next_state(rng):
    frames = _trajectory(rng, 5)
    store = _Frames(frames)
    for out, frame in zip(pushforward(frames[2:], store, "train", _truth, 1.0, epoch=0, seed=1, steps=2), frames[2:]):
        assert out["pushforward"]
        np.testing.assert_allclose(out["positions"], frame["positions"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(out["target_displacement"], frame["target_displacement"], rtol=0, atol=1e-12)
    # an error δ per step: after three steps from frame 1 the input of pair 4 is off by 3δ, its target is not
    error = rng.normal(0, 0.01, frames[0]["positions"].shape)
    wrong = lambda fs: [(d + error, v + 0.1 * error) for d, v in _truth(fs)]  # noqa: E731
    out, frame = pushforward([frames[4]], store, "train", wrong, 1.0, epoch=0, seed=1, steps=3)[0], frames[4]
    np.testing.assert_allclose(out["positions"] - frame["positions"], 3 * error, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["positions"] + out["target_displacement"],
                               frame["positions"] + frame["target_displacement"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["velocities"], frame["velocities"] + 0.1 * error, rtol=0, atol=1e-15)
    # not across the start of another trajectory, nor before a trajectory's `steps`-th pair
    broken = frames[:2] + [_frame(rng, 2)] + frames[3:]
    assert pushforward([broken[3]], _Frames(broken), "train", _truth, 1.0, 0, 1, steps=2)[0] is broken[3]
    assert pushforward([frames[1]], store, "train", _truth, 1.0, 0, 1, steps=2)[0] is frames[1]


def test_pushforward_only_where_the_frame_before_is_the_predecessor(rng):
    frames = _trajectory(rng, 3)
    frames[2] = {**_frame(rng, 2)}  # the first pair of another trajectory
    calls = []
    record = lambda fs: calls.append(len(fs)) or _truth(fs)  # noqa: E731
    assert pushforward(frames[:1], _Frames(frames), "train", record, 1.0, 0, 1)[0] is frames[0]  # no frame before
    assert pushforward(frames[2:], _Frames(frames), "train", record, 1.0, 0, 1)[0] is frames[2]
    assert calls == [] and pushforward(frames, _Frames(frames), "train", record, 0.0, 0, 1) is frames
    long = _trajectory(rng, 40)
    chosen = [bool(f.get("pushforward")) for f in pushforward(long, _Frames(long), "train", _truth, 0.5, 0, 1)]
    assert 10 < sum(chosen) < 30


def test_training_with_every_lever_learns_resumes_exactly_and_exports(tmp_path):
    store = write_toy_store(tmp_path / "damped.zarr", {"train": 8, "val": 2}, seed=2, damping=0.2, chain=4)
    config = load_config(ROOT / "configs" / "tiny.yaml")
    model = dataclasses.replace(config.model, baseline="ballistic", per_species_scale=True)
    levers = dict(time_reversal=0.5, noise_displacement_A=0.002, noise_velocity_A_per_fs=2e-4, pushforward=0.5)

    def run(out, **extra):
        training = dataclasses.replace(config.training, data=str(store), out_dir=str(tmp_path / out), threads=1,
                                       log_every=1000, **levers, **extra)
        return dataclasses.replace(config, model=model, training=training)

    prepared = prepare(run("check"))
    stats = prepared.config.scales
    assert stats.species_displacement_rms_A[0] > 0 and len(stats.species_velocity_rms_A_per_fs) == 2
    # damping 0.2: the velocity residual is 0.2 v, much smaller than v itself
    assert stats.velocity_rms_A_per_fs < 0.3 * prepared.statistics["velocity_rms_A_per_fs"]
    silent = lambda *a: None  # noqa: E731
    result = train(run("straight", max_steps=6), progress=False, log=silent)
    train(run("split", max_steps=3), progress=False, log=silent)
    train(run("split", max_steps=6), resume="auto", progress=False, log=silent)
    from trajcast_dist.training.checkpoint import load_state

    a, b = (load_state(tmp_path / run_ / "checkpoints" / "last.pt")["model"] for run_ in ("straight", "split"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point() and a[k].numel()) == 0.0
    from trajcast_dist.io.checkpoint import load_model

    exported, meta = load_model(result.model_path)
    assert exported.config.baseline == "ballistic" and exported.config.per_species_scale
    assert exported.scales.species_displacement_rms_A == pytest.approx(stats.species_displacement_rms_A)
    reference = copy.deepcopy(exported).use_fast_inference()
    for k in range(2):
        assert torch.allclose(reference.readout.scales(torch.tensor([k]))[0],
                              torch.tensor(stats.species_displacement_rms_A[k], dtype=torch.float64))
