"""VACF/VDOS: harmonic oscillators peak at their frequency; overlap score 1 only for identical spectra."""

import numpy as np
import pytest
from scipy.special import erfc

from trajcast_dist.analysis.vdos import (THZ_TO_CM1, at_resolution_of, cosine_overlap, overlap_score,
                                         velocity_autocorrelation, vibrational_dos)


def oscillators(frequencies_THz, n_frames, dt_fs, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) * dt_fs
    phases = rng.uniform(0, 2 * np.pi, (len(frequencies_THz), 3))
    f = np.asarray(frequencies_THz)[:, None] / 1000.0   # 1/fs
    return np.cos(2 * np.pi * f[None] * t[:, None, None] + phases[None])


def test_thz_to_wavenumber():
    assert THZ_TO_CM1 == pytest.approx(33.35641, rel=1e-6)


def test_harmonic_oscillator_vdos_peaks_at_its_frequency():
    dt_fs, max_lag_fs = 1.0, 1000.0
    numbers = np.array([8] * 10 + [1] * 10)
    v = oscillators([10.0] * 10 + [30.0] * 10, 4000, dt_fs)
    result = vibrational_dos([v], numbers, np.where(numbers == 8, 16.0, 1.0), dt_fs, max_lag_fs)
    resolution_THz = 1000.0 / max_lag_fs
    for label, expected in (("O", 10.0), ("H", 30.0)):
        assert abs(result.frequency_THz[np.argmax(result.vdos[label])] - expected) < resolution_THz
        assert np.trapezoid(result.vdos[label], result.frequency_cm1) == pytest.approx(1.0)
        assert result.vacf[label][0] == pytest.approx(1.0)
    # VACF of a cosine is cos(2πfτ): one full period of the 10 THz oscillator is 100 fs.
    assert result.vacf["O"][100] == pytest.approx(1.0, abs=0.02)
    assert result.vacf["O"][50] == pytest.approx(-1.0, abs=0.02)
    assert result.frequency_cm1[np.argmax(result.vdos["H"])] == pytest.approx(30 * 33.356, abs=resolution_THz * 34)
    # The mass-weighted total has both peaks.
    total = result.vdos["all"]
    assert total[np.argmin(abs(result.frequency_THz - 10))] > 0.2 * total.max()


def test_velocity_autocorrelation_matches_direct_average_over_origins():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(60, 5, 3))
    direct = [np.mean([np.sum(v[t] * v[t + k]) for t in range(60 - k)]) for k in range(20)]
    np.testing.assert_allclose(velocity_autocorrelation(v, 20), direct, rtol=1e-10)


def test_overlap_score_is_one_for_identical_and_matches_gaussian_formula():
    nu = np.linspace(0, 100, 20001)
    sigma, shift = 3.0, 4.0
    a = np.exp(-0.5 * ((nu - 40) / sigma) ** 2)
    b = 7.0 * np.exp(-0.5 * ((nu - 40 - shift) / sigma) ** 2)   # scale must not matter
    assert overlap_score(nu, a, nu, a) == pytest.approx(1.0, abs=1e-12)
    assert cosine_overlap(nu, a, nu, a) == pytest.approx(1.0, abs=1e-12)
    assert overlap_score(nu, a, nu, b) == pytest.approx(erfc(shift / (2 * np.sqrt(2) * sigma)), abs=1e-4)
    assert cosine_overlap(nu, a, nu, b) == pytest.approx(np.exp(-shift**2 / (4 * sigma**2)), abs=1e-4)


def test_overlap_uses_only_the_common_resolvable_range():
    fine = np.linspace(0, 100, 1001)
    coarse = np.linspace(0, 50, 201)
    spectrum = np.exp(-0.5 * ((fine - 20) / 3) ** 2) + (fine > 60)   # the part above 50 THz is unresolvable
    assert overlap_score(fine, spectrum, coarse, np.interp(coarse, fine, spectrum)) == pytest.approx(1.0, abs=1e-3)


def test_longer_reference_is_compared_at_the_resolution_of_the_shorter_run():
    """A reference VDOS with τmax 1 ps, cut to a run with τmax 0.2 ps, equals the reference's VDOS computed with
    τmax 0.2 ps from its velocities; a reference that is not longer, or has another frame spacing, is unchanged."""
    numbers = np.array([8] * 6 + [1] * 6)
    masses = np.where(numbers == 8, 16.0, 1.0)
    v = oscillators([10.0] * 6 + [30.0] * 6, 3000, 2.0) + np.random.default_rng(1).normal(size=(3000, 12, 3))
    long = vibrational_dos([v], numbers, masses, 2.0, 1000.0)
    short = vibrational_dos([v[:400]], numbers, masses, 2.0, 200.0)
    cut = at_resolution_of(long, short)
    expected = vibrational_dos([v], numbers, masses, 2.0, 200.0)
    assert cut.lag_fs.size == short.lag_fs.size < long.lag_fs.size
    for label in ("O", "H", "all"):
        np.testing.assert_allclose(cut.vdos[label], expected.vdos[label], rtol=1e-9, atol=1e-12)
    assert at_resolution_of(short, long) is short
    assert at_resolution_of(long, vibrational_dos([v[::2]], numbers, masses, 4.0, 200.0)) is long
