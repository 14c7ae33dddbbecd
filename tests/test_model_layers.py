"""Each building block on its own: equivariance of every layer (as e3nn tests its operations), the radial
embedding's smooth cutoff, the velocity embedding, and exact conservation."""

import numpy as np
import pytest
import torch
from e3nn import o3

from trajcast_dist.model.backends import get_backend
from trajcast_dist.model.conservation import Conservation
from trajcast_dist.model.interaction import EdgeInputs, InteractionLayer, gate_for
from trajcast_dist.model.radial import PolynomialCutoff, RadialEmbedding
from trajcast_dist.model.velocity import VelocityGaussians
from trajcast_dist.reduce import LocalReducer

HIDDEN = o3.Irreps("4x0e+4x0o+4x1e+4x1o+4x2e+4x2o")
SH = o3.Irreps.spherical_harmonics(2)


def _random_layer_inputs(n_nodes=7, n_edges=20, seed=0):
    torch.manual_seed(seed)
    h = HIDDEN.randn(n_nodes, -1, dtype=torch.float64)
    edges = torch.randint(0, n_nodes, (2, n_edges))
    vectors = torch.randn(n_edges, 3, dtype=torch.float64) * 2
    velocities = torch.randn(n_nodes, 3, dtype=torch.float64) * 0.02
    species = torch.randint(0, 2, (n_nodes,))
    return h, edges, vectors, velocities, species


@pytest.fixture
def float64_default():
    """e3nn builds CG coefficients and Wigner matrices in the default dtype: make it float64 for this test."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("parity", [1, -1])
def test_interaction_layer_is_equivariant(parity, float64_default):
    torch.manual_seed(0)
    layer = InteractionLayer(get_backend("e3nn"), HIDDEN, HIDDEN, SH, 2, 2, 8, 8, [8, 8], 5.0)
    radial = RadialEmbedding(4.0)
    vel = VelocityGaussians(2, 0.1)
    h, edges, vectors, velocities, species = _random_layer_inputs()
    onehot = torch.nn.functional.one_hot(species, 2).double()

    def run(h, vectors, velocities):
        edge_sh = o3.spherical_harmonics(SH, vectors, True, normalization="component")
        v_sh = o3.spherical_harmonics(SH, velocities, True, normalization="component")
        edge_inputs = EdgeInputs(edges, edge_sh, radial(vectors.norm(dim=-1)), None, None, None)
        return layer(h, onehot, v_sh, vel(velocities.norm(dim=-1), species), edge_inputs)

    # Wigner matrices from angles directly: recovering angles from a matrix (acos) would cost precision.
    angles = [torch.tensor(a, dtype=torch.float64) for a in (0.7, 1.1, -2.3)]
    k = torch.tensor(0 if parity == 1 else 1, dtype=torch.float64)
    R = o3.angles_to_matrix(*angles) * parity
    D_hidden = HIDDEN.D_from_angles(*angles, k)
    D_out = layer.irreps_out.D_from_angles(*angles, k)
    out = run(h, vectors, velocities)
    out_rot = run(h @ D_hidden.T, vectors @ R.T, velocities @ R.T)
    assert out.abs().max() > 1e-3
    scale = float(out.detach().abs().max())
    torch.testing.assert_close(out_rot, out @ D_out.T, atol=1e-12 * scale, rtol=0)


def test_gate_keeps_irreps_of_hidden_features():
    assert gate_for(HIDDEN).irreps_out == HIDDEN


def test_radial_embedding_vanishes_smoothly_at_cutoff():
    cutoff = PolynomialCutoff(4.0, p=6)
    r = torch.tensor([3.999999, 4.0, 4.5], dtype=torch.float64, requires_grad=True)
    u = cutoff(r)
    (grad,) = torch.autograd.grad(u.sum(), r)
    assert float(u[0]) < 1e-15 and float(u[1]) == 0.0 and float(u[2]) == 0.0
    assert abs(float(grad[0])) < 1e-10
    assert float(cutoff(torch.tensor([1e-6], dtype=torch.float64))) == pytest.approx(1.0, abs=1e-12)


def test_velocity_gaussians_are_species_weighted():
    emb = VelocityGaussians(num_species=2, v_max=0.1, num_basis=8)
    with torch.no_grad():
        emb.weights[1] *= 2.0
    speed = torch.tensor([0.03, 0.03])
    out = emb(speed, torch.tensor([0, 1]))
    torch.testing.assert_close(out[1], 2.0 * out[0])
    assert int(out[0].argmax()) == 2  # 0.03 is nearest the third centre (spacing 0.1/7)


@pytest.mark.parametrize("angular", [False, True])
def test_conservation_is_exact(angular):
    g = torch.Generator().manual_seed(1)
    n, f64 = 30, dict(generator=g, dtype=torch.float64)
    masses = torch.rand(n, **f64) * 15 + 1
    positions = torch.randn(n, 3, **f64) * 3
    v_in = torch.randn(n, 3, **f64) * 0.01
    dr, v = torch.randn(n, 3, **f64) * 0.05, torch.randn(n, 3, **f64) * 0.01
    batch = torch.zeros(n, dtype=torch.long)
    dr_c, v_c = Conservation(angular)(dr, v, positions, v_in, masses, batch, 1, LocalReducer())
    m = masses[:, None]
    torch.testing.assert_close((m * dr_c).sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-13, rtol=0)
    torch.testing.assert_close((m * v_c).sum(0), (m * v_in).sum(0), atol=1e-13, rtol=0)
    if angular:
        com = (m * positions).sum(0) / masses.sum()
        L_in = (m * torch.linalg.cross(positions - com, v_in)).sum(0)
        L_out = (m * torch.linalg.cross(positions + dr_c - com, v_c)).sum(0)
        torch.testing.assert_close(L_out, L_in, atol=1e-12, rtol=0)
