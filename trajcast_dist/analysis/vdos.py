"""Velocity autocorrelation and vibrational density of states per species (paper Results, Figs. 2A, 3B, 4B).

    C(τ) = ⟨Σ_i v_i(t)·v_i(t+τ)⟩_t  (average over all time origins, FFT, unbiased 1/(T−τ) weights)
    S(ν) = 2 ∫_0^τmax C(τ) w(τ) cos(2πντ) dτ,   w = right half of a Hann window over [0, τmax]

Per species all atoms share one mass, so plain and mass-weighted spectra coincide after normalisation; the
"all" spectrum is mass-weighted (Σ m_i v_i·v_i, the phonon DOS). Spectra are area-normalised, ∫ S dν̃ = 1 with
ν̃ in cm⁻¹. The highest resolvable frequency is the Nyquist frequency 1/(2Δt) of the stored frames
(≈ 3336 cm⁻¹ at Δt = 5 fs); the resolution is ≈ 1/τmax.

Overlap score (paper Results quotes "overlap scores [58]" ≈ 0.95–0.99 without a formula, so we define it):

    overlap = ∫ min(S_a, S_b) dν̃  over the frequencies both spectra resolve, each re-normalised there to area 1,

which is 1 for identical spectra and 0 for disjoint ones. We also report the normalised inner product
∫ S_a S_b / √(∫S_a² ∫S_b²) ("cosine"), the similarity measure we believe ref. [58] (Schran et al., PNAS 2021)
uses; the paper text in this repository does not state it, so read it as an extra, not as the paper's number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.data import chemical_symbols

__all__ = ["VDOSResult", "velocity_autocorrelation", "spectrum_from_vacf", "vibrational_dos", "vdos_from_vacf",
           "at_resolution_of", "overlap_score", "cosine_overlap", "THZ_TO_CM1"]

# 1 THz = 10¹² s⁻¹ / c (cm/s): ν̃ = ν / c.
THZ_TO_CM1 = 1e12 / 2.99792458e10
# Bytes of complex FFT workspace per chunk of atoms: bounds memory for large systems.
_FFT_CHUNK_BYTES = 256 * 2**20


@dataclass
class VDOSResult:
    """Normalised VACF (C(τ)/C(0)) and area-normalised VDOS per species symbol plus "all" (mass-weighted)."""
    lag_fs: np.ndarray
    vacf: dict[str, np.ndarray]
    frequency_THz: np.ndarray
    vdos: dict[str, np.ndarray]

    @property
    def frequency_cm1(self) -> np.ndarray:
        return self.frequency_THz * THZ_TO_CM1


def velocity_autocorrelation(velocities, max_lag: int, weights=None) -> np.ndarray:
    """Σ_i w_i ⟨v_i(t)·v_i(t+τ)⟩_t for τ = 0 … max_lag−1 frames, velocities (frames, atoms, 3).

    Wiener–Khinchin with zero padding to 2T (no wrap-around), divided by the T−τ origins of each lag; atoms are
    processed in chunks so the FFT workspace stays ≈ 256 MiB.
    """
    v = np.asarray(velocities)
    n_frames, n_atoms, _ = v.shape
    weights = np.ones(n_atoms) if weights is None else np.asarray(weights, dtype=float)
    n_fft = 2 * n_frames
    chunk = max(1, int(_FFT_CHUNK_BYTES // (16 * (n_fft // 2 + 1) * 3)))
    total = np.zeros(max_lag)
    for start in range(0, n_atoms, chunk):
        block = v[:, start:start + chunk].astype(np.float64)
        spectrum = np.fft.rfft(block, n=n_fft, axis=0)
        power = np.abs(spectrum) ** 2 * weights[start:start + chunk, None]
        total += np.fft.irfft(power.sum(axis=(1, 2)), n=n_fft)[:max_lag]
    return total / (n_frames - np.arange(max_lag))


def spectrum_from_vacf(vacf, dt_fs: float, pad: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Windowed cosine transform of C(τ) (module docstring): returns (ν in THz, S(ν) ≥ 0 up to Nyquist).

    The even extension of C·w is Fourier transformed; `pad` zero-pads it for a smoother frequency grid (it adds
    no resolution). Small negative values from the finite window are clipped to 0 so the spectrum is a density.
    """
    c = np.asarray(vacf, dtype=float)
    m = c.size
    window = 0.5 * (1.0 + np.cos(np.pi * np.arange(m) / m))
    x = c * window
    n = pad * 2 * m
    even = np.zeros(n)
    even[:m] = x
    even[n - m + 1:] = x[1:][::-1]
    spectrum = np.fft.rfft(even).real * dt_fs
    frequency_THz = np.fft.rfftfreq(n, d=dt_fs) * 1000.0
    return frequency_THz, np.clip(spectrum, 0.0, None)


def vibrational_dos(velocity_sets, numbers, masses, dt_fs: float, max_lag_fs: float = 2000.0) -> VDOSResult:
    """VACF and VDOS per species and mass-weighted total from one or more (frames, atoms, 3) velocity arrays.

    Several arrays (independent trajectories of the same system) are averaged at the level of C(τ).
    `max_lag_fs` is τmax, capped at half the shortest trajectory so every lag has many origins.
    """
    velocity_sets = [np.asarray(v) for v in velocity_sets]
    shortest = min(v.shape[0] for v in velocity_sets)
    max_lag = int(min(round(max_lag_fs / dt_fs) + 1, max(shortest // 2, 2)))
    numbers = np.asarray(numbers)
    groups = {chemical_symbols[z]: numbers == z for z in sorted(set(numbers.tolist()), reverse=True)}
    vacf = {}
    for name, mask in [*groups.items(), ("all", np.ones(numbers.size, dtype=bool))]:
        weights = np.asarray(masses, dtype=float)[mask] if name == "all" else None
        c = np.mean([velocity_autocorrelation(v[:, mask], max_lag, weights) for v in velocity_sets], axis=0)
        vacf[name] = c / c[0]
    return vdos_from_vacf(vacf, dt_fs)


def vdos_from_vacf(vacf: dict[str, np.ndarray], dt_fs: float) -> VDOSResult:
    """Area-normalised spectra of normalised VACFs C(τ)/C(0) (the normalisation cancels in the spectrum's)."""
    vdos, frequency = {}, None
    for name, c in vacf.items():
        frequency, s = spectrum_from_vacf(c, dt_fs)
        vdos[name] = s / np.trapezoid(s, frequency * THZ_TO_CM1)
    lags = len(next(iter(vacf.values())))
    return VDOSResult(np.arange(lags) * dt_fs, dict(vacf), frequency, vdos)


def at_resolution_of(reference: VDOSResult, other: VDOSResult) -> VDOSResult:
    """`reference` with its VACF cut to `other`'s τmax, so both spectra have one resolution (≈ 1/τmax): a short
    forecast's broad peaks are then compared with equally broad MD peaks. Unchanged when the frame spacing differs
    or the reference is not longer."""
    dt_fs = reference.lag_fs[1] - reference.lag_fs[0]
    other_dt_fs = other.lag_fs[1] - other.lag_fs[0]
    lags = other.lag_fs.size
    if abs(dt_fs - other_dt_fs) > 1e-6 * dt_fs or reference.lag_fs.size <= lags:
        return reference
    return vdos_from_vacf({name: c[:lags] for name, c in reference.vacf.items()}, dt_fs)


def overlap_score(frequency_a, spectrum_a, frequency_b, spectrum_b) -> float:
    """∫ min(S_a, S_b) dν over the common resolvable range, both re-normalised to area 1 there (∈ [0, 1])."""
    grid, a, b = _common_grid(frequency_a, spectrum_a, frequency_b, spectrum_b)
    return float(np.clip(np.trapezoid(np.minimum(a, b), grid), 0.0, 1.0))


def cosine_overlap(frequency_a, spectrum_a, frequency_b, spectrum_b) -> float:
    """∫ S_a S_b / √(∫S_a² ∫S_b²) over the common range (module docstring: an extra, see ref. [58])."""
    grid, a, b = _common_grid(frequency_a, spectrum_a, frequency_b, spectrum_b)
    return float(np.trapezoid(a * b, grid) / np.sqrt(np.trapezoid(a * a, grid) * np.trapezoid(b * b, grid)))


def _common_grid(frequency_a, spectrum_a, frequency_b, spectrum_b):
    """Interpolate b onto a's grid up to the lower Nyquist frequency (trajectories may use different Δt)."""
    frequency_a, frequency_b = np.asarray(frequency_a), np.asarray(frequency_b)
    top = min(frequency_a[-1], frequency_b[-1])
    keep = frequency_a <= top
    grid = frequency_a[keep]
    a = np.asarray(spectrum_a)[keep]
    b = np.interp(grid, frequency_b, np.asarray(spectrum_b))
    return grid, a / np.trapezoid(a, grid), b / np.trapezoid(b, grid)
