"""RDF: ideal gas → 1, simple cubic peak and coordination, triclinic cells, deviation score."""

import numpy as np
import pytest

from trajcast_dist.analysis.rdf import RDFAccumulator, first_peak, radial_distribution, rdf_deviation
from trajcast_dist.analysis.trajectory import half_min_width_A


def simple_cubic(a, reps):
    grid = np.stack(np.meshgrid(*[np.arange(reps)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return a * grid.astype(float), np.eye(3) * a * reps


def test_ideal_gas_rdf_is_one_for_like_and_unlike_pairs():
    rng = np.random.default_rng(0)
    numbers = np.array([8] * 150 + [1] * 250)
    cell = np.diag([10.0, 11.0, 12.0])
    frames = [(rng.random((400, 3)) @ cell, cell) for _ in range(20)]
    result = radial_distribution(frames, numbers, r_max_A=5.0, bins=50)
    assert set(result.g) == {"O-O", "O-H", "H-H"}
    outer = result.r_A > 2.0
    for label, g in result.g.items():
        assert abs(g[outer].mean() - 1.0) < 0.02, label
        assert np.max(np.abs(g[outer] - 1.0)) < 0.12, label
    # Coordination of H around O at r: ρ_H · 4/3 π r³ for an ideal gas.
    rho_h = 250 / np.linalg.det(cell)
    assert result.coordination["O-H"][-1] == pytest.approx(rho_h * 4 / 3 * np.pi * 5.0**3, rel=0.03)


def test_simple_cubic_first_peak_at_lattice_constant_with_six_neighbours():
    positions, cell = simple_cubic(3.0, 5)
    result = radial_distribution([(positions, cell)], np.full(len(positions), 18), r_max_A=7.0, bins=140)
    r_peak, g_peak = first_peak(result.r_A, result.g["Ar-Ar"])
    assert abs(r_peak - 3.0) <= 0.05
    assert g_peak > 10
    n = result.coordination["Ar-Ar"]
    assert n[np.searchsorted(result.r_A, 4.0)] == pytest.approx(6.0)
    assert n[np.searchsorted(result.r_A, 4.4)] == pytest.approx(18.0)   # + 12 at √2·a
    assert n[np.searchsorted(result.r_A, 5.3)] == pytest.approx(26.0)   # + 8 at √3·a


def test_triclinic_cell_gives_same_rdf_as_orthorhombic_cell_of_same_lattice():
    positions, cell = simple_cubic(3.0, 5)
    # (15, 15, 0) is a lattice translation of the same crystal: a sheared description of one structure.
    sheared = np.array([[15.0, 0, 0], [15.0, 15.0, 0], [0, 0, 15.0]])
    r_max = half_min_width_A(sheared)
    assert r_max == pytest.approx(0.5 * 15**3 / np.linalg.norm(np.cross(sheared[1], sheared[2])))
    numbers = np.full(len(positions), 18)
    ortho = RDFAccumulator(numbers, [(18, 18)], r_max, 100)
    tri = RDFAccumulator(numbers, [(18, 18)], r_max, 100)
    ortho.add(positions, cell)
    tri.add(positions, sheared)
    np.testing.assert_allclose(tri.result().g["Ar-Ar"], ortho.result().g["Ar-Ar"], atol=1e-12)


def test_rdf_deviation_is_zero_for_identical_and_positive_otherwise():
    r = np.linspace(0.0, 6.0, 121)
    g = 1 + np.exp(-(r - 3) ** 2)
    assert rdf_deviation(r, g, g) == 0.0
    assert rdf_deviation(r, 1.1 * g, g) == pytest.approx(0.1)


@pytest.mark.parametrize("jitter_A", [0.0, 1e-9])
def test_replicas_at_r_max_are_outside_the_half_open_last_bin(jitter_A):
    """A 2×2×2 supercell of an 8 Å box: r_max = 8 Å and every atom's six replicas sit exactly there (or, with
    extxyz-like rounding, a hair either side). They belong to no bin: the last bin holds only d < r_max."""
    rng = np.random.default_rng(4)
    small = np.round(rng.random((12, 3)) * 8.0 * 64) / 64       # exact binary fractions: replicas exactly at 8 Å
    shifts = 8.0 * np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    positions = (small[None] + shifts).reshape(-1, 3) + rng.normal(scale=jitter_A, size=(96, 3))
    numbers = np.tile(np.array([8] * 4 + [1] * 8), 8)
    cell = np.eye(3) * 16.0
    result = radial_distribution([(positions, cell)], numbers, r_max_A=8.0, bins=40)
    delta = positions[None] - positions[:, None]
    d = np.linalg.norm(delta - 16.0 * np.round(delta / 16.0), axis=-1)
    for label, (a, b) in (("O-O", (8, 8)), ("O-H", (8, 1)), ("H-H", (1, 1))):
        mask = np.outer(numbers == a, numbers == b) & (d > 0) & (d < 8.0 - 1e-6)
        n_a = np.count_nonzero(numbers == a)
        assert result.coordination[label][-1] * n_a == pytest.approx(np.count_nonzero(mask)), label
        in_last_bin = np.diff(result.coordination[label][-2:])[0] * n_a
        assert in_last_bin == pytest.approx(np.count_nonzero(mask & (d >= result.edges_A[-2]))), label
