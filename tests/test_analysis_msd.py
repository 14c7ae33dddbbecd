"""MSD: exact ballistic law, random-walk diffusion coefficient with block error bar, unit conversion."""

import numpy as np
import pytest

from trajcast_dist.analysis.msd import (A2_PER_FS_IN_1E9_M2_PER_S, fit_diffusion, mean_squared_displacement,
                                        msd_fft, split_blocks)
from trajcast_dist.errors import UserError


def test_unit_conversion_of_diffusion_coefficient():
    # 1 Å²/fs = 1e-20 m² / 1e-15 s = 1e-5 m²/s = 1e4 · 1e-9 m²/s.
    assert A2_PER_FS_IN_1E9_M2_PER_S == pytest.approx(1e-20 / 1e-15 / 1e-9)
    lag = np.arange(100.0)
    d, exponent = fit_diffusion(lag, 6.0 * 2.3e-4 * lag, (10.0, 90.0))
    assert d * A2_PER_FS_IN_1E9_M2_PER_S == pytest.approx(2.3)   # liquid water's D, 2.3e-9 m²/s
    assert exponent == pytest.approx(1.0)


def test_free_particles_have_ballistic_msd():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(30, 3))
    t = np.arange(200) * 2.0
    r = v[None] * t[:, None, None]
    np.testing.assert_allclose(msd_fft(r), np.mean(np.sum(v**2, axis=1)) * (t ** 2), rtol=1e-9, atol=1e-9)


def test_random_walk_diffusion_coefficient_is_step_squared_over_2_d_dt():
    rng = np.random.default_rng(1)
    dt_fs, sigma_A, n_atoms = 2.0, 0.1, 200
    r = np.cumsum(rng.normal(scale=sigma_A, size=(4000, n_atoms, 3)), axis=0)
    step2 = 3 * sigma_A**2
    expected = step2 / (2 * 3 * dt_fs) * A2_PER_FS_IN_1E9_M2_PER_S
    result = mean_squared_displacement(split_blocks(r, 4), np.full(n_atoms, 18), np.ones(n_atoms), dt_fs,
                                       remove_com=False)
    assert result.n_segments == 4
    assert 0 < result.D_err["Ar"] < 0.05 * expected
    assert abs(result.D["Ar"] - expected) < max(4 * result.D_err["Ar"], 0.02 * expected)
    assert result.slope_exponent["Ar"] == pytest.approx(1.0, abs=0.05)
    # Removing the centre-of-mass drift of N equal walkers scales the MSD by (1 − 1/N).
    com = mean_squared_displacement(split_blocks(r, 4), np.full(n_atoms, 18), np.ones(n_atoms), dt_fs)
    assert com.D["Ar"] == pytest.approx(result.D["Ar"] * (1 - 1 / n_atoms), rel=0.01)


def test_blocks_and_fit_window_errors_are_user_errors():
    r = np.zeros((20, 2, 3))
    with pytest.raises(UserError, match="at least 3 blocks"):
        split_blocks(r, 2)
    with pytest.raises(UserError, match="fit window"):
        mean_squared_displacement(split_blocks(r, 4), [1, 1], [1.0, 1.0], 1.0, fit_window_fs=(100.0, 200.0))


def test_refit_over_another_window_gives_the_segments_mean_d():
    """A reference-curves file keeps only mean curves: refitting D over the forecast's window is exact for D (a
    least-squares slope is linear in the data); the error comes from the standard-error curve."""
    from trajcast_dist.analysis.msd import refit

    rng = np.random.default_rng(2)
    r = np.cumsum(rng.normal(scale=0.1, size=(4000, 50, 3)), axis=0)
    blocks = split_blocks(r, 4)
    stored = mean_squared_displacement(blocks, np.full(50, 18), np.ones(50), 2.0, remove_com=False)
    window = (100.0, 600.0)
    direct = mean_squared_displacement(blocks, np.full(50, 18), np.ones(50), 2.0, fit_window_fs=window,
                                       remove_com=False)
    again = refit(stored, window)
    assert stored.fit_window_fs != window and again.fit_window_fs == window
    assert again.D["Ar"] == pytest.approx(direct.D["Ar"], rel=1e-10) and again.D["Ar"] != stored.D["Ar"]
    assert again.slope_exponent["Ar"] == pytest.approx(direct.slope_exponent["Ar"], rel=1e-10)
    assert 0.3 * direct.D_err["Ar"] < again.D_err["Ar"] < 3 * direct.D_err["Ar"]
    assert refit(stored, stored.fit_window_fs) is stored
