"""Symmetries of the whole model (paper Methods eq. 6): O(3) equivariance, translation, permutation,
periodic images, replicas. float64 tolerances ≤ 1e-10."""

import numpy as np
import pytest
import torch
from e3nn import o3

from helpers import predict, thermal_velocities

TOL = 1e-10


def _orthogonal(seed, parity):
    torch.manual_seed(seed)
    return o3.rand_matrix(dtype=torch.float64).numpy() * parity


@pytest.mark.parametrize("parity", [1, -1])
def test_displacement_and_velocity_rotate_with_input(tiny_model, water, parity):
    v = thermal_velocities(water.numbers, 300.0)
    R = _orthogonal(3, parity)
    dr, nv = predict(tiny_model, water.positions, v, water.numbers, water.cell.array, True)
    dr_rot, nv_rot = predict(tiny_model, water.positions @ R.T, v @ R.T, water.numbers, water.cell.array @ R.T, True)
    assert np.abs(dr).max() > 1e-4  # a non-trivial prediction
    np.testing.assert_allclose(dr_rot, dr @ R.T, atol=TOL, rtol=0)
    np.testing.assert_allclose(nv_rot, nv @ R.T, atol=TOL, rtol=0)


def test_outputs_invariant_under_translation(tiny_model, water):
    v = thermal_velocities(water.numbers, 300.0)
    dr, nv = predict(tiny_model, water.positions, v, water.numbers, water.cell.array, True)
    dr_t, nv_t = predict(tiny_model, water.positions + np.array([0.3, -1.7, 2.9]), v, water.numbers,
                         water.cell.array, True)
    np.testing.assert_allclose(dr_t, dr, atol=TOL)
    np.testing.assert_allclose(nv_t, nv, atol=TOL)


def test_outputs_permute_with_atoms(tiny_model, water):
    v = thermal_velocities(water.numbers, 300.0)
    perm = np.random.default_rng(0).permutation(len(water))
    dr, nv = predict(tiny_model, water.positions, v, water.numbers, water.cell.array, True)
    dr_p, nv_p = predict(tiny_model, water.positions[perm], v[perm], water.numbers[perm], water.cell.array, True)
    np.testing.assert_allclose(dr_p, dr[perm], atol=TOL)
    np.testing.assert_allclose(nv_p, nv[perm], atol=TOL)


def test_outputs_invariant_to_wrapping_into_other_images(tiny_model, water):
    v = thermal_velocities(water.numbers, 300.0)
    shifts = np.random.default_rng(5).integers(-2, 3, size=(len(water), 3))
    dr, nv = predict(tiny_model, water.positions, v, water.numbers, water.cell.array, True)
    moved = water.positions + shifts @ water.cell.array
    dr_w, nv_w = predict(tiny_model, moved, v, water.numbers, water.cell.array, True)
    np.testing.assert_allclose(dr_w, dr, atol=TOL)
    np.testing.assert_allclose(nv_w, nv, atol=TOL)


def test_replicated_box_gives_replicated_outputs(tiny_model, water):
    v = thermal_velocities(water.numbers, 300.0)
    dr, nv = predict(tiny_model, water.positions, v, water.numbers, water.cell.array, True)
    big = water.repeat((2, 2, 2))
    dr_big, nv_big = predict(tiny_model, big.positions, np.tile(v, (8, 1)), big.numbers, big.cell.array, True)
    np.testing.assert_allclose(dr_big, np.tile(dr, (8, 1)), atol=TOL)
    np.testing.assert_allclose(nv_big, np.tile(nv, (8, 1)), atol=TOL)


def test_triclinic_cell_rotation_equivariance(tiny_model, water):
    cell = water.cell.array + np.array([[0, 0, 0], [2.5, 0, 0], [1.0, -1.5, 0]])
    v = thermal_velocities(water.numbers, 300.0)
    R = _orthogonal(11, 1)
    dr, nv = predict(tiny_model, water.positions, v, water.numbers, cell, True)
    dr_rot, nv_rot = predict(tiny_model, water.positions @ R.T, v @ R.T, water.numbers, cell @ R.T, True)
    np.testing.assert_allclose(dr_rot, dr @ R.T, atol=TOL)
    np.testing.assert_allclose(nv_rot, nv @ R.T, atol=TOL)


def test_cell_smaller_than_twice_cutoff(tiny_model):
    """A 3-atom cell (much smaller than 2·r_c) equals the same crystal built as a large supercell."""
    from ase import Atoms

    small = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], cell=np.eye(3) * 3.1, pbc=True)
    v = np.array([[0.001, 0.0, -0.002], [0.01, 0.005, 0.0], [-0.004, 0.0, 0.012]])
    dr, nv = predict(tiny_model, small.positions, v, small.numbers, small.cell.array, True)
    big = small.repeat((3, 3, 3))
    dr_big, _ = predict(tiny_model, big.positions, np.tile(v, (27, 1)), big.numbers, big.cell.array, True)
    np.testing.assert_allclose(dr_big, np.tile(dr, (27, 1)), atol=TOL)
