"""Two backends, one weight layout (issue #8): the cuEquivariance layers reproduce the e3nn reference to
≤ 1e-10 (relative, float64) on the same weights, and a checkpoint written by either loads in the other."""

import numpy as np
import pytest
import torch
from helpers import predict, thermal_velocities

from trajcast_dist.io.checkpoint import load_model, save_model
from trajcast_dist.structures import water_box

pytest.importorskip("cuequivariance_torch")


@pytest.fixture(scope="module")
def models():
    from trajcast_dist.config import load_config
    from trajcast_dist.model import TrajCast

    config = load_config("configs/tiny.yaml")
    torch.manual_seed(0)
    reference = TrajCast(config.model, [1, 8], scales=config.scales).eval()
    cueq = TrajCast(config.model, [1, 8], "cueq", config.scales).eval()
    cueq.load_state_dict(reference.state_dict())
    return reference, cueq


def _system():
    atoms = water_box(molecules_per_side=3, box_A=9.3129, seed=3)
    return (atoms.positions, thermal_velocities(atoms.numbers, 300.0, 1), atoms.numbers, atoms.cell.array, True)


def test_cueq_matches_e3nn_in_float64(models):
    reference, cueq = models
    system = _system()
    for a, b in zip(predict(reference, *system), predict(cueq, *system)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10 * np.abs(a).max())


def test_cueq_layers_match_e3nn_at_full_width():
    from e3nn import o3

    from trajcast_dist.model.backends import cueq_backend, e3nn_backend

    torch.set_default_dtype(torch.float64)
    try:
        hidden = o3.Irreps("64x0o+64x0e+64x1o+64x1e+64x2o+64x2e")
        sh = o3.Irreps.spherical_harmonics(2)
        tp_ref, tp_cueq = e3nn_backend.ChannelwiseTP(hidden, sh, 2), cueq_backend.ChannelwiseTP(hidden, sh, 2)
        lin_ref, lin_cueq = e3nn_backend.Linear(tp_ref.irreps_out, hidden), cueq_backend.Linear(tp_ref.irreps_out,
                                                                                               hidden)
    finally:
        torch.set_default_dtype(torch.float32)
    lin_cueq.load_state_dict(lin_ref.state_dict())
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, hidden.dim, dtype=torch.float64, generator=generator)
    y = torch.randn(16, 9, dtype=torch.float64, generator=generator)
    w = torch.randn(16, tp_ref.weight_numel, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        a, b = tp_ref(x, y, w), tp_cueq(x, y, w)
        torch.testing.assert_close(b, a, rtol=0, atol=1e-10 * float(a.abs().max()))
        torch.testing.assert_close(lin_cueq(a), lin_ref(a), rtol=0, atol=1e-10 * float(lin_ref(a).abs().max()))


def test_checkpoint_round_trips_between_backends(models, tmp_path):
    reference, cueq = models
    system = _system()
    expected = predict(reference, *system)
    save_model(tmp_path / "e3nn.pt", reference)
    as_cueq, _ = load_model(tmp_path / "e3nn.pt", backend="cueq")
    save_model(tmp_path / "cueq.pt", as_cueq)
    back, _ = load_model(tmp_path / "cueq.pt", backend="e3nn")
    for model in (as_cueq, back):
        for a, b in zip(expected, predict(model, *system)):
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-10 * np.abs(a).max())
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in reference.state_dict().items())
