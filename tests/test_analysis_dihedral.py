"""Dihedral angles and free-energy profiles."""

import numpy as np
import pytest

from trajcast_dist import units
from trajcast_dist.analysis.dihedral import dihedral_angles, dihedral_free_energy, parse_quadruple
from trajcast_dist.errors import UserError


def butane_like(phi_deg):
    phi = np.radians(phi_deg)
    return np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.5],
                     [np.cos(phi), np.sin(phi), 1.5]])


@pytest.mark.parametrize("phi", [-120.0, 0.0, 60.0, 179.0])
def test_dihedral_angle_of_constructed_geometry(phi):
    assert dihedral_angles(butane_like(phi), [(0, 1, 2, 3)])[0] == pytest.approx(phi)


def test_dihedral_uses_minimum_image_for_a_molecule_split_by_the_box():
    cell = np.eye(3) * 10.0
    r = butane_like(60.0) + 9.0
    r[2:] -= [0, 0, 10.0]   # wrapped across the z face
    assert dihedral_angles(r, [(0, 1, 2, 3)], cell, [True] * 3)[0] == pytest.approx(60.0)


def test_free_energy_difference_is_kT_ln_population_ratio():
    angles = np.array([60.0] * 200 + [-60.0] * 100)[:, None]
    result = dihedral_free_energy(angles, [(0, 1, 2, 3)], 300.0, bins=36)
    f = result.free_energy_ev["0-1-2-3"]
    assert np.nanmin(f) == 0.0
    assert np.nanmax(f) == pytest.approx(units.KB_EV_PER_K * 300.0 * np.log(2.0))


def test_bad_quadruple_is_user_error():
    with pytest.raises(UserError, match="four different"):
        parse_quadruple("0,1,1,2")
    with pytest.raises(UserError, match="number of atoms"):
        parse_quadruple("0,1,2,9", n_atoms=5)
