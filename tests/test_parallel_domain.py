"""The decomposition's geometry without MPI: grid choice, widths, ownership, neighbours and periodic shifts."""

import numpy as np
import pytest

from trajcast_dist.errors import UserError
from trajcast_dist.parallel.domain import (HI, LO, Domain, choose_grid, largest_valid_grid, parse_grid,
                                           perpendicular_widths)

CUBE = np.eye(3) * 12.4172


def test_cube_splits_evenly_into_eight():
    assert choose_grid(perpendicular_widths(CUBE), True, 8, 4.0) == (2, 2, 2)


def test_long_box_is_cut_across_its_long_axis():
    cell = np.diag([12.4, 12.4, 49.6])
    assert choose_grid(perpendicular_widths(cell), True, 4, 4.0) == (1, 1, 4)
    assert choose_grid(perpendicular_widths(cell), True, 2, 4.0) == (1, 1, 2)


def test_chosen_grid_keeps_every_subdomain_a_cutoff_wide():
    cell = np.diag([9.0, 30.0, 17.0])
    for ranks in range(1, 25):
        try:
            grid = choose_grid(perpendicular_widths(cell), True, ranks, 4.0)
        except UserError:
            continue
        assert np.prod(grid) == ranks
        assert (perpendicular_widths(cell) / np.array(grid) >= 4.0).all()


def test_triclinic_widths_are_perpendicular_plane_distances():
    cell = np.array([[10.0, 0.0, 0.0], [5.0, 8.0, 0.0], [1.0, 2.0, 9.0]])
    widths = perpendicular_widths(cell)
    assert widths[2] == pytest.approx(9.0)  # a×b is along z
    for d in range(3):  # projection of the d-th vector on the normal of the other two
        normal = np.cross(cell[(d + 1) % 3], cell[(d + 2) % 3])
        assert widths[d] == pytest.approx(abs(cell[d] @ normal) / np.linalg.norm(normal))
    assert widths[0] < 10.0  # shear makes the x slab thinner than |a|


def test_too_many_ranks_names_the_largest_valid_count():
    with pytest.raises(UserError, match="largest valid P for this box is 27"):
        choose_grid(perpendicular_widths(CUBE), True, 32, 4.0)
    with pytest.raises(UserError, match="does not factor"):
        choose_grid(perpendicular_widths(CUBE), True, 5, 4.0)
    assert largest_valid_grid(perpendicular_widths(CUBE), 4.0) == (3, 3, 3)


def test_explicit_grid_is_checked():
    assert Domain.create(CUBE, True, 4, 4.0, "2x2x1").grid == (2, 2, 1)
    with pytest.raises(UserError, match="narrower than the cutoff"):
        Domain.create(CUBE, True, 4, 4.0, "4x1x1")
    with pytest.raises(UserError, match="2 ranks"):
        Domain.create(CUBE, True, 2, 4.0, "2x2x1")
    with pytest.raises(UserError, match="three positive integers"):
        parse_grid("2x2")


def test_every_point_has_exactly_one_owner_inside_its_bounds():
    cell = np.array([[12.0, 0.0, 0.0], [3.0, 11.0, 0.0], [2.0, 2.5, 13.0]])
    domain = Domain(cell, True, (2, 2, 3), 3.5)
    s = np.random.default_rng(0).random((2000, 3))
    owners = domain.owner(s @ cell)
    assert owners.min() >= 0 and owners.max() < 12
    for rank in range(12):
        lo, hi = domain.bounds(rank)
        mine = s[owners == rank]
        assert ((mine >= lo - 1e-12) & (mine < hi + 1e-12)).all()
    # round-off at the top face stays with the last subdomain
    assert domain.owner(np.array([[1.0, 1.0, 1.0]]) @ cell)[0] == 11


def test_neighbours_wrap_and_shifts_cross_the_seam():
    domain = Domain(CUBE, True, (3, 1, 2), 4.0)
    rank = domain.rank_of((0, 0, 1))
    assert domain.neighbor(rank, 0, LO) == domain.rank_of((2, 0, 1))
    assert domain.neighbor(rank, 1, HI) == rank  # one subdomain along y: its own periodic image
    np.testing.assert_allclose(domain.shift(rank, 0, LO), CUBE[0])
    np.testing.assert_allclose(domain.shift(rank, 2, HI), -CUBE[2])
    np.testing.assert_allclose(domain.shift(rank, 0, HI), 0.0)
    slab = Domain(CUBE, [True, True, False], (1, 1, 2), 4.0)
    assert slab.neighbor(0, 2, LO) is None and slab.neighbor(1, 2, HI) is None
