"""PNG figures of each observable, forecast (solid) over reference (dashed), in the paper's style (Figs. 2–4).

Time axes (VACF, MSD, T(t)) span the forecast: a reference that ran longer is shown where the two can be compared,
its T(t) trace aligned to the forecast's start.

Figures are built on matplotlib's object API with the Agg canvas, never pyplot: no display, no global state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from trajcast_dist.analysis.vdos import THZ_TO_CM1

__all__ = ["plot_rdf", "plot_vdos", "plot_msd", "plot_temperature", "plot_energy", "plot_dihedrals"]

FORECAST = "TrajCast"
REFERENCE = "reference"
REFERENCE_STYLE = dict(ls="--", color="k", lw=1.0)


def _series(result, reference) -> list:
    """(result, line style, legend name) of the forecast and, when given, the reference drawn over it."""
    return [(result, {}, FORECAST)] + ([(reference, REFERENCE_STYLE, REFERENCE)] if reference is not None else [])


def plot_rdf(result, reference, path) -> None:
    def decorate(ax, label):
        ax.axhline(1.0, color="0.8", lw=0.8, zorder=0)
        ax.set(title=f"g$_{{{label}}}$(r)", xlabel="r (Å)", xlim=(0, result.edges_A[-1]))

    _curve_panels(result, reference, "r_A", "g", decorate, "g(r)", path)


def plot_vdos(result, reference, path, overlaps: dict | None = None) -> None:
    labels = list(result.vdos)
    fig, axes = _figure(2, len(labels), width=3.6, height=2.8)
    for column, label in enumerate(labels):
        top, bottom = axes[column], axes[len(labels) + column]
        top.plot(result.lag_fs / 1000.0, result.vacf[label], label=FORECAST)
        bottom.plot(result.frequency_cm1, result.vdos[label], label=FORECAST)
        spectra = [(result.frequency_cm1, result.vdos[label])]
        if reference is not None and label in reference.vdos:
            top.plot(reference.lag_fs / 1000.0, reference.vacf[label], label=REFERENCE, **REFERENCE_STYLE)
            bottom.plot(reference.frequency_cm1, reference.vdos[label], label=REFERENCE, **REFERENCE_STYLE)
            spectra.append((reference.frequency_cm1, reference.vdos[label]))
        bottom.set_xlim(0, _spectral_extent(spectra))
        title = f"{label}" + (f"  (overlap {overlaps[label]:.3f})" if overlaps and label in overlaps else "")
        top.set(title=title, xlabel="τ (ps)", xlim=(0, result.lag_fs[-1] / 1000.0))
        top.axhline(0.0, color="0.8", lw=0.8, zorder=0)
        bottom.set(xlabel="wavenumber (cm$^{-1}$)")
        _thz_axis(bottom)
    axes[0].set_ylabel("VACF  C(τ)/C(0)")
    axes[len(labels)].set_ylabel("VDOS (area 1)")
    axes[0].legend(frameon=False)
    _save(fig, path)


def plot_msd(result, reference, path) -> None:
    labels = list(result.msd)
    fig, axes = _figure(1, len(labels), width=3.8)
    for ax, label in zip(axes, labels):
        for res, style, name in _series(result, reference):
            if label not in res.msd:
                continue
            t_ps = res.lag_fs / 1000.0
            line, = ax.plot(t_ps, res.msd[label], label=f"{name}: D = {res.D[label]:.3g} ± {res.D_err[label]:.2g}",
                            **style)
            ax.fill_between(t_ps, res.msd[label] - 3 * res.msd_err[label], res.msd[label] + 3 * res.msd_err[label],
                            color=line.get_color(), alpha=0.2, lw=0)
        lo, hi = np.asarray(result.fit_window_fs) / 1000.0
        ax.axvspan(lo, hi, color="0.9", zorder=0, label="fit window")
        ax.set(title=f"{label}  (D in 10$^{{-9}}$ m$^2$/s)", xlabel="τ (ps)", xlim=(0, result.lag_fs[-1] / 1000.0))
        _fit_y_to_x_range(ax)
        ax.legend(frameon=False, fontsize=7)
    axes[0].set_ylabel("MSD (Å$^2$), band ±3 s.e. over segments")
    _save(fig, path)


def plot_temperature(result, reference, path) -> None:
    """T(t) and p(T) against the canonical law; with several elements, a third panel of block-averaged T_s(t)."""
    by_species = len(result.species_temperature_K) > 1
    fig, axes = _figure(1, 3 if by_species else 2, width=4.5)
    trace, hist = axes[:2]
    series = _series(result, reference)
    for res, style, name in series:
        time_ps = (res.time_fs - res.time_fs[0] + result.time_fs[0]) / 1000.0
        line, = trace.plot(time_ps, res.temperature_K, label=f"{name}: {res.mean_K:.1f} ± "
                           f"{res.sigma_K:.1f} K", **(style | dict(lw=0.6, alpha=0.8)))
        hist.hist(res.temperature_K, bins=40, density=True, histtype="step", color=line.get_color(),
                  ls=style.get("ls", "-"), label=name)
    t0, sigma = result.t0_K, result.sigma_canonical_K
    grid = np.linspace(t0 - 4 * sigma, t0 + 4 * sigma, 200)
    hist.plot(grid, np.exp(-0.5 * ((grid - t0) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)), color="C4",
              label=f"canonical σ = √(2/N$_f$)·T$_0$ = {sigma:.1f} K")
    trace.axhline(t0, color="C4", lw=0.8)
    trace.set(xlabel="t (ps)", ylabel="T (K)", title="temperature",
              xlim=(result.time_fs[0] / 1000.0, result.time_fs[-1] / 1000.0))
    hist.set(xlabel="T (K)", ylabel="p(T)", title=f"N$_f$ = {result.n_dof}, T$_0$ = {t0:.1f} K")
    trace.legend(fontsize=7, loc="upper left")
    hist.legend(fontsize=7, loc="upper left")
    if by_species:
        _plot_species_temperatures(axes[2], series, t0)
    _save(fig, path)


def _plot_species_temperatures(ax, series, t0: float, blocks: int = 100) -> None:
    """Equipartition: each element's temperature in `blocks` block averages (the reference's as its mean, a
    dashed line, since its run may not span the forecast's times); all lie on T0 at equilibrium."""
    (result, _, name), references = series[0], series[1:]
    n = max(1, result.time_fs.size // blocks)
    usable = (result.time_fs.size // n) * n
    time_ps = result.time_fs[:usable].reshape(-1, n).mean(1) / 1000.0
    for k, (element, trace) in enumerate(result.species_temperature_K.items()):
        ax.plot(time_ps, trace[:usable].reshape(-1, n).mean(1), color=f"C{k}", lw=1.0,
                label=f"{name} {element}: {result.species_mean_K[element]:.0f} K")
        for reference, style, ref_name in references:
            if element in reference.species_mean_K:
                ax.axhline(reference.species_mean_K[element], color=f"C{k}", ls=style["ls"], lw=1.0,
                           label=f"{ref_name} {element}: {reference.species_mean_K[element]:.0f} K")
    ax.axhline(t0, color="C4", lw=0.8)
    ax.set(xlabel="t (ps)", ylabel="T$_s$ (K)", title="temperature per element (equipartition)")
    ax.legend(fontsize=7, loc="best")


def plot_energy(result, reference, path, overlap: float | None = None) -> None:
    fig, (ax,) = _figure(1, 1, width=4.5)
    ax.stairs(result.density, result.edges_ev, label=f"{FORECAST}: {result.mean_ev:.3f} ± {result.sigma_ev:.3f} eV")
    if reference is not None:
        ax.stairs(reference.density, reference.edges_ev, color="k", ls="--",
                  label=f"{REFERENCE}: {reference.mean_ev:.3f} ± {reference.sigma_ev:.3f} eV")
    title = "potential energy (reference force field)"
    ax.set(xlabel="E$_{pot}$ (eV)", ylabel="p(E)",
           title=title + (f"\nhistogram overlap {overlap:.3f}" if overlap is not None else ""))
    ax.legend(frameon=False, fontsize=7)
    _save(fig, path)


def plot_dihedrals(result, reference, path) -> None:
    def decorate(ax, label):
        ax.set(title=f"dihedral {label}", xlabel="φ (deg)", xlim=(-180, 180))

    _curve_panels(result, reference, "angle_deg", "free_energy_ev", decorate,
                  f"F(φ) = −k$_B$T ln p (eV), T = {result.temperature_K:.0f} K", path)


def _curve_panels(result, reference, x: str, curves: str, decorate, ylabel: str, path) -> None:
    """A panel per label of the forecast's `curves` (a dict of arrays over attribute `x`), the reference's curve of
    that label drawn over it where it has one."""
    labels = list(getattr(result, curves))
    fig, axes = _figure(1, len(labels), width=3.6)
    for ax, label in zip(axes, labels):
        for run, style, name in _series(result, reference):
            if label in getattr(run, curves):
                ax.plot(getattr(run, x), getattr(run, curves)[label], label=name, **style)
        decorate(ax, label)
    axes[0].set_ylabel(ylabel)
    axes[0].legend(frameon=False)
    _save(fig, path)


def _figure(rows: int, columns: int, width: float = 3.6, height: float = 3.0):
    fig = Figure(figsize=(width * columns, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, np.atleast_1d(fig.subplots(rows, columns)).ravel()


def _fit_y_to_x_range(ax) -> None:
    """Rescale y to the lines inside the x limits: a longer reference curve would otherwise flatten the forecast."""
    lo, hi = ax.get_xlim()
    data = [tuple(map(np.asarray, line.get_data())) for line in ax.get_lines()]
    tops = [np.max(y[(x >= lo) & (x <= hi)]) for x, y in data if np.any((x >= lo) & (x <= hi))]
    if tops:
        ax.set_ylim(0.0, 1.1 * max(tops))


def _spectral_extent(spectra) -> float:
    """Upper x limit: past 99.5 % of every spectrum's area (with a margin), never beyond the lowest Nyquist."""
    tops, nyquist = [], []
    for frequency, spectrum in spectra:
        cumulative = np.cumsum(spectrum)
        tops.append(frequency[np.searchsorted(cumulative, 0.995 * cumulative[-1])])
        nyquist.append(frequency[-1])
    return float(min(1.25 * max(tops), min(nyquist)))


def _thz_axis(ax) -> None:
    secondary = ax.secondary_xaxis("top", functions=(lambda x: x / THZ_TO_CM1, lambda x: x * THZ_TO_CM1))
    secondary.set_xlabel("THz", fontsize=8)


def _save(fig, path) -> None:
    fig.savefig(Path(path), dpi=120)
