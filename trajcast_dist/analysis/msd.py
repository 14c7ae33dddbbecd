"""Mean squared displacement and self-diffusion coefficient (paper Results, Fig. 4C; fit "following [59]").

    MSD(τ) = ⟨|r_i(t+τ) − r_i(t)|²⟩_{i,t}   (all time origins, FFT algorithm of Calandrini et al. 2011)
    D      = slope of MSD(τ) / (2·d),  d = 3, from a linear fit MSD = 6Dτ + c over a diffusive window

Positions must be unwrapped (trajectory.Unwrapper). The centre-of-mass displacement is removed first by default:
a drifting box is not diffusion. Error bar: D is fitted on each of several independent segments (several files,
or ≥ 3 equal blocks of one trajectory, as the paper's 4 blocks) and reported as mean ± standard error.
Without a user window the fit runs over [0.2, 0.5] of a segment's length; `slope_exponent` (d log MSD / d log τ
over the window, 1 when diffusive, 2 when ballistic) tells whether that window is diffusive.

Units: 1 Å²/fs = 10⁻²⁰ m² / 10⁻¹⁵ s = 10⁻⁵ m²/s = 10⁴ × 10⁻⁹ m²/s (and 10⁻⁹ m²/s = 10⁻⁵ cm²/s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.data import chemical_symbols

from trajcast_dist.errors import UserError

__all__ = ["MSDResult", "msd_fft", "split_blocks", "fit_diffusion", "mean_squared_displacement", "refit",
           "A2_PER_FS_IN_1E9_M2_PER_S"]

A2_PER_FS_IN_1E9_M2_PER_S = 1e4
_AUTO_WINDOW = (0.2, 0.5)
# Bytes of complex FFT workspace per chunk of atoms: bounds memory for long trajectories.
_FFT_CHUNK_BYTES = 256 * 2**20


@dataclass
class MSDResult:
    """MSD (Å²) per species, mean and standard error over segments; D and its error in 10⁻⁹ m²/s."""
    lag_fs: np.ndarray
    msd: dict[str, np.ndarray]
    msd_err: dict[str, np.ndarray]
    D: dict[str, float]
    D_err: dict[str, float]
    slope_exponent: dict[str, float]
    fit_window_fs: tuple[float, float]
    n_segments: int


def msd_fft(displacements) -> np.ndarray:
    """MSD(τ) for τ = 0 … T−1 frames from (frames, atoms, 3) positions, averaged over atoms and all origins.

    MSD(m) = S1(m) − 2 S2(m), where S2 is the positional autocorrelation (FFT, zero padded) and S1 the running
    sum of |r|² terms; O(T log T) per atom instead of O(T²). Atoms go through the FFT in chunks (≈ 256 MiB).
    """
    r = np.asarray(displacements)
    n, n_atoms, _ = r.shape
    chunk = max(1, int(_FFT_CHUNK_BYTES // (16 * (n + 1) * 3)))
    s2 = np.zeros(n)
    sq = np.zeros(n)
    for start in range(0, n_atoms, chunk):
        block = r[:, start:start + chunk].astype(np.float64)
        sq += np.sum(block * block, axis=(1, 2))
        spectrum = np.fft.rfft(block, n=2 * n, axis=0)
        s2 += np.fft.irfft((np.abs(spectrum) ** 2).sum(axis=(1, 2)), n=2 * n)[:n]
    # Origins available at lag m drop |r(k)|² for the first m and the last m frames.
    dropped = np.concatenate([[0.0], np.cumsum(sq)[:-1] + np.cumsum(sq[::-1])[:-1]])
    s1 = 2.0 * sq.sum() - dropped
    return (s1 - 2.0 * s2) / (n - np.arange(n)) / n_atoms


def split_blocks(displacements, n_blocks: int) -> list[np.ndarray]:
    """Split one trajectory (frames, atoms, 3) into n_blocks equal consecutive segments (≥ 3 for an error bar)."""
    if n_blocks < 3:
        raise UserError(f"--blocks {n_blocks}: need at least 3 blocks for an error bar")
    length = len(displacements) // n_blocks
    if length < 4:
        raise UserError(f"MSD: {len(displacements)} frames cannot make {n_blocks} blocks of ≥ 4 frames; "
                        "use a longer trajectory, fewer --blocks or a smaller --stride")
    return [displacements[k * length:(k + 1) * length] for k in range(n_blocks)]


def fit_diffusion(lag_fs, msd, window_fs: tuple[float, float], dim: int = 3) -> tuple[float, float]:
    """D in Å²/fs from a least-squares line through MSD over window_fs, and the log-log slope there."""
    lag_fs, msd = np.asarray(lag_fs), np.asarray(msd)
    inside = (lag_fs >= window_fs[0]) & (lag_fs <= window_fs[1])
    if np.count_nonzero(inside) < 2:
        raise UserError(f"MSD fit window {window_fs[0] / 1000:g}–{window_fs[1] / 1000:g} ps holds fewer than 2 "
                        f"lags (segments cover {lag_fs[-1] / 1000:g} ps); choose --msd-fit-ps inside it")
    slope = np.polyfit(lag_fs[inside], msd[inside], 1)[0]
    positive = inside & (lag_fs > 0) & (msd > 0)
    exponent = (np.polyfit(np.log(lag_fs[positive]), np.log(msd[positive]), 1)[0]
                if np.count_nonzero(positive) >= 2 else float("nan"))
    return float(slope / (2 * dim)), float(exponent)


def mean_squared_displacement(segments, numbers, masses, dt_fs: float, *,
                              fit_window_fs: tuple[float, float] | None = None,
                              remove_com: bool = True) -> MSDResult:
    """MSD per species and D ± error from independent segments of unwrapped positions (module docstring)."""
    if len(segments) < 2:
        raise UserError("MSD: need at least 2 independent segments (files or blocks) for an error bar")
    length = min(len(s) for s in segments)
    lag_fs = np.arange(length) * dt_fs
    duration = lag_fs[-1]
    window = (tuple(fit_window_fs) if fit_window_fs is not None
              else (_AUTO_WINDOW[0] * duration, _AUTO_WINDOW[1] * duration))
    numbers = np.asarray(numbers)
    masses = np.asarray(masses, dtype=float)
    curves = {chemical_symbols[z]: [] for z in sorted(set(numbers.tolist()), reverse=True)}
    for segment in segments:
        r = np.asarray(segment[:length], dtype=np.float64)
        if remove_com:
            r = r - (np.einsum("i,tij->tj", masses, r) / masses.sum())[:, None, :]
        for z in sorted(set(numbers.tolist()), reverse=True):
            curves[chemical_symbols[z]].append(msd_fft(r[:, numbers == z]))
    result = MSDResult(lag_fs, {}, {}, {}, {}, {}, window, len(segments))
    for name, per_segment in curves.items():
        per_segment = np.array(per_segment)
        fits = [fit_diffusion(lag_fs, m, window) for m in per_segment]
        d_values = np.array([f[0] for f in fits]) * A2_PER_FS_IN_1E9_M2_PER_S
        result.msd[name] = per_segment.mean(axis=0)
        result.msd_err[name] = per_segment.std(axis=0, ddof=1) / np.sqrt(len(per_segment))
        result.D[name] = float(d_values.mean())
        result.D_err[name] = float(d_values.std(ddof=1) / np.sqrt(d_values.size))
        result.slope_exponent[name] = fit_diffusion(lag_fs, result.msd[name], window)[1]
    return result


def refit(result: MSDResult, window_fs: tuple[float, float]) -> MSDResult:
    """`result` with D fitted over another window, from its mean curves (a reference-curves file keeps no
    segment curves). D is exact: a least-squares slope is linear in the data, so the slope of the mean curve is
    the mean of the segments' slopes. Its error is the slope of the standard-error curve: exact when the segments
    differ by a slope (MSD errors are correlated across lags), otherwise an estimate."""
    window_fs = (float(window_fs[0]), float(window_fs[1]))
    if np.allclose(window_fs, result.fit_window_fs, rtol=1e-9, atol=0):
        return result
    fits = {name: fit_diffusion(result.lag_fs, msd, window_fs) for name, msd in result.msd.items()}
    return MSDResult(result.lag_fs, result.msd, result.msd_err,
                     {name: fit[0] * A2_PER_FS_IN_1E9_M2_PER_S for name, fit in fits.items()},
                     {name: abs(fit_diffusion(result.lag_fs, result.msd_err[name], window_fs)[0])
                      * A2_PER_FS_IN_1E9_M2_PER_S for name in result.msd},
                     {name: fit[1] for name, fit in fits.items()}, window_fs, result.n_segments)
