"""The model options that let reference-trained (IBM/trajcast) models run here: each does what the reference does,
and the defaults keep existing model files' numbers bit for bit."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace
from helpers import predict, thermal_velocities

from trajcast_dist.config import ModelConfig
from trajcast_dist.errors import UserError
from trajcast_dist.model.conservation import Conservation
from trajcast_dist.model.interaction import gate_for
from trajcast_dist.model.radial import BesselBasis
from trajcast_dist.model.velocity import VelocityGaussians
from trajcast_dist.reduce import LocalReducer


def test_model_files_without_the_options_load_to_the_same_numbers(tiny_model, water, tmp_path):
    """Files written before the reference options, with the data scales among the architecture's keys and the
    run-time backend there too, load to the same model."""
    from trajcast_dist.io.checkpoint import load_model, save_model

    save_model(tmp_path / "m.pt", tiny_model)
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    meta = json.loads(payload["metadata"])
    assert meta["scales"]["avg_num_neighbors"] == 27.0 and "avg_num_neighbors" not in meta["config"]
    new = {"gate_activation", "bessel_epsilon_A", "velocity_basis", "velocity_max_A_per_fs", "conserve_ang_mom",
           "com_displacement", "net_lin_mom", "net_ang_mom"}
    meta["config"] = {**{k: v for k, v in meta["config"].items() if k not in new}, **meta.pop("scales"),
                      "backend": "e3nn"}  # as written before the options and the scales' own key
    torch.save({"metadata": json.dumps(meta), "state_dict": payload["state_dict"]}, tmp_path / "old.pt")
    old = load_model(tmp_path / "old.pt")[0]
    args = (water.positions, thermal_velocities(water.numbers, 300.0), water.numbers, water.cell[:], water.pbc)
    for mine, theirs in zip(predict(old, *args), predict(tiny_model, *args)):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("activation, gated_at_zero", [("sigmoid", True), ("silu", False)])
def test_gate_activation_option(activation, gated_at_zero):
    """At gate pre-activation 0 a sigmoid gate passes half the feature, a SiLU gate (the reference's) none."""
    hidden = o3.Irreps("2x0e+2x1o")
    gate = gate_for(hidden, activation)
    x = torch.zeros(1, gate.irreps_in.dim, dtype=torch.float64)
    x[0, -6:] = 1.0  # the gated vectors; scalars and gates stay 0
    vectors = gate(x)[0, -6:]
    assert bool((vectors != 0).all()) is gated_at_zero


def test_bessel_epsilon_option():
    r = torch.linspace(0.5, 4.0, 9, dtype=torch.float64)
    plain, shifted = BesselBasis(4.0, 6), BesselBasis(4.0, 6, epsilon_A=1e-5)
    omega = plain.frequencies.detach()
    expected = np.sqrt(2 / 4.0) * torch.sin(omega * r[:, None]) / (r[:, None] + 1e-5)
    torch.testing.assert_close(shifted(r), expected, rtol=1e-15, atol=0)
    torch.testing.assert_close(plain(r), np.sqrt(2 / 4.0) * torch.sin(omega * r[:, None]) / r[:, None],
                               rtol=0, atol=0)


def test_interior_speed_gaussians_are_e3nns_soft_one_hot():
    """The reference's layout: e3nn soft_one_hot_linspace(cutoff=True), × 1.12 (its normalisation, in the weights)."""
    torch.set_default_dtype(torch.float64)
    try:
        embedding = VelocityGaussians(1, 0.08, 5, layout="interior")
    finally:
        torch.set_default_dtype(torch.float32)
    speed = torch.linspace(0.0, 0.12, 13, dtype=torch.float64)
    reference = soft_one_hot_linspace(speed, 0.0, 0.08, 5, basis="gaussian", cutoff=True) * 1.12
    torch.testing.assert_close(embedding(speed, torch.zeros(13, dtype=torch.long)), reference, rtol=1e-13, atol=1e-15)


def _random_prediction(seed=1, n=20, drift=0.0):
    g = torch.Generator().manual_seed(seed)
    f64 = dict(generator=g, dtype=torch.float64)
    masses = torch.rand(n, **f64) * 15 + 1
    positions = torch.randn(n, 3, **f64) * 3
    v_in = torch.randn(n, 3, **f64) * 0.01 + drift
    dr, v = torch.randn(n, 3, **f64) * 0.05, torch.randn(n, 3, **f64) * 0.01
    return dr, v, positions, v_in, masses, torch.zeros(n, dtype=torch.long)


def _apply(conservation, dr, v, positions, v_in, masses, batch):
    return conservation(dr, v, positions, v_in, masses, batch, 1, LocalReducer())


def _com_shift(masses, dr):
    return (masses[:, None] * dr).sum(0) / masses.sum()


def test_reference_rule_keeps_the_drift_of_a_moving_system():
    dr, v, positions, v_in, masses, batch = _random_prediction(drift=0.003)
    dr_c, v_c = _apply(Conservation(False, "remove_if_zero_momentum"), dr, v, positions, v_in, masses, batch)
    torch.testing.assert_close(dr_c, dr, rtol=0, atol=0)  # non-zero input momentum: displacement untouched
    torch.testing.assert_close((masses[:, None] * v_c).sum(0), (masses[:, None] * v_in).sum(0), rtol=0, atol=1e-14)
    dr_d, _ = _apply(Conservation(False), dr, v, positions, v_in, masses, batch)  # this project's rule
    torch.testing.assert_close(_com_shift(masses, dr_d), torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("target", [[0.0, 0.0, 0.0], [0.02, -0.01, 0.005]])
def test_target_linear_momentum(target):
    dr, v, positions, v_in, masses, batch = _random_prediction()
    dr_c, v_c = _apply(Conservation(False, "remove_if_zero_momentum", net_lin_mom=target), dr, v, positions, v_in,
                       masses, batch)
    torch.testing.assert_close((masses[:, None] * v_c).sum(0), torch.tensor(target, dtype=torch.float64), rtol=0,
                               atol=1e-14)
    if any(target):
        torch.testing.assert_close(dr_c, dr, rtol=0, atol=0)
    else:  # zero target: the centre of mass stays put
        torch.testing.assert_close(_com_shift(masses, dr_c), torch.zeros(3, dtype=torch.float64), rtol=0,
                                   atol=1e-15)


@pytest.mark.parametrize("target", [None, [0.0, 0.0, 0.0], [0.3, -0.2, 0.1]])
def test_angular_momentum_about_the_new_centre_of_mass(target):
    """With the drift kept, L′ about the moved centre of mass equals the target (or the input's L)."""
    dr, v, positions, v_in, masses, batch = _random_prediction(drift=0.003)
    conservation = Conservation(True, "remove_if_zero_momentum", net_ang_mom=target)
    dr_c, v_c = _apply(conservation, dr, v, positions, v_in, masses, batch)
    m = masses[:, None]

    def angular(x, vel):
        return (m * torch.linalg.cross(x - (m * x).sum(0) / masses.sum(), vel)).sum(0)

    expected = angular(positions, v_in) if target is None else torch.tensor(target, dtype=torch.float64)
    torch.testing.assert_close(angular(positions + dr_c, v_c), expected, rtol=0, atol=1e-12)
    assert float(_com_shift(masses, dr_c).abs().max()) > 1e-4  # the drift was kept


@pytest.mark.parametrize("periodic, flag, angular", [(True, None, False), (False, None, True), (True, True, True),
                                                      (False, False, False)])
def test_conserve_ang_mom_has_its_own_flag(periodic, flag, angular):
    config = ModelConfig(periodic=periodic, conserve_ang_mom=flag)
    assert Conservation.from_config(config).angular is angular


@pytest.mark.parametrize("change, message", [
    ({"gate_activation": "tanh"}, "model.gate_activation"),
    ({"velocity_basis": "uniform"}, "model.velocity_basis"),
    ({"com_displacement": "never"}, "model.com_displacement"),
    ({"bessel_epsilon_A": -1e-5}, "model.bessel_epsilon_A"),
    ({"velocity_max_A_per_fs": 0.0}, "model.velocity_max_A_per_fs"),
    ({"net_lin_mom": [0.0, 0.0]}, "model.net_lin_mom"),
])
def test_option_values_are_checked(change, message):
    with pytest.raises(UserError, match=message):
        dataclasses.replace(ModelConfig(), **change).validate("x.yaml")
