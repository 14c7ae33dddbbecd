"""`analyze(...)`: every observable of a forecast (and its MD reference) in one streaming pass per file.

Writes, into `out_dir`: one PNG per observable (forecast over reference), its curves as CSV (`*_reference.csv` for
the reference), and `summary.json` with the comparison numbers (paper Results: RDF, VDOS overlap, diffusion;
SI B.1: temperature). Definitions of the derived scores are in the modules and repeated in summary.json.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from trajcast_dist import units
from trajcast_dist.analysis import plots
from trajcast_dist.analysis.dihedral import dihedral_angles, dihedral_free_energy, parse_quadruple
from trajcast_dist.analysis.energy import (EnergyAccumulator, energy_distribution, histogram_overlap,
                                           reference_energy_function, shared_edges)
from trajcast_dist.analysis.msd import mean_squared_displacement, refit, split_blocks
from trajcast_dist.analysis.rdf import RDFAccumulator, first_peak, rdf_deviation, species_pairs
from trajcast_dist.analysis.reference import is_reference_curves, read_reference_curves, write_reference_curves
from trajcast_dist.analysis.temperature import (degrees_of_freedom, equipartition_gap, instantaneous_temperature,
                                                species_temperatures, temperature_statistics)
from trajcast_dist.analysis.trajectory import FrameBuffer, half_min_width_A, iter_frames, peek
from trajcast_dist.analysis.vdos import at_resolution_of, cosine_overlap, overlap_score, vibrational_dos
from trajcast_dist.analysis.verdict import TOLERANCES, Verdict, judge, overall_verdict
from trajcast_dist.errors import UserError, check_positive

__all__ = ["AnalysisSettings", "OBSERVABLES", "analyze", "format_summary"]

OBSERVABLES = ("rdf", "vdos", "msd", "temperature", "energy", "dihedral")

DEFINITIONS = {
    "rdf_deviation": "integral |g - g_ref| dr / integral g_ref dr over 0..r_max (0 = identical)",
    "rdf_first_peak": "highest g between the first rise above 1 and the next fall below 1",
    "vdos_overlap": "integral min(S, S_ref) dnu of area-normalised spectra over the common resolvable range, in [0, 1]",
    "vdos_cosine": "integral S S_ref / sqrt(integral S^2 integral S_ref^2) over the same range (extra; cf. ref. [58])",
    "D": "slope/6 of MSD over fit_window_ps, mean +- standard error over segments (files, or blocks of one file), "
         "in 1e-9 m^2/s",
    "sigma_canonical_K": "sqrt(2 / N_f) * T0, N_f = 3N-3 periodic or 3N-6 molecule; T0 = --t0 or the mean T",
    "energy_histogram_overlap": "sum over shared bins of min(p, p_ref) * width, in [0, 1]",
    "species_mean_K": "per element: 2 K_s / (k_B f_s), f_s = 3 N_s - (3N - N_f) M_s / M; sum f_s T_s / N_f = T",
    "equipartition_gap": "max over elements |T_s - T| / T; a note is written above "
                         f"{TOLERANCES.equipartition_gap:g}",
    "verdicts": "within/outside the tolerance printed with each (analysis.verdict.Tolerances, also under "
                "'tolerances'); the VDOS of a longer reference is compared at the forecast's resolution",
}


@dataclass(frozen=True)
class AnalysisSettings:
    """What to compute and how; the CLI flags map one to one onto these fields."""
    skip_ps: float = 0.0
    stride: int = 1
    dt_fs: float | None = None
    observables: tuple[str, ...] | None = None
    rdf_rmax_A: float | None = None
    bins: int = 200
    species_pairs: str = "auto"
    vacf_max_ps: float = 2.0
    msd_fit_ps: tuple[float, float] | None = None
    blocks: int = 4
    t0_K: float | None = None
    dihedrals: tuple[str, ...] = ()
    energy_system: str | None = None
    max_memory_gb: float = 4.0


@dataclass
class _Plan:
    observables: tuple[str, ...]
    periodic: bool
    pairs: list = field(default_factory=list)
    r_max_A: float = 0.0
    quads: list = field(default_factory=list)


@dataclass
class _SetResult:
    paths: list[str]
    n_atoms: int
    n_frames: int
    dt_fs: float
    rdf: object = None
    vdos: object = None
    msd: object = None
    temperature: object = None
    energy: object = None
    dihedral: object = None
    energies_ev: np.ndarray | None = None
    energy_failure: str | None = None
    angles_deg: np.ndarray | None = None


def analyze(traj_paths, reference_paths=None, *, out_dir, settings: AnalysisSettings | None = None,
            overwrite: bool = False, energy_fn=None, progress: bool = True, export_reference=None,
            export_source: str | None = None, **overrides) -> dict:
    """Analyse forecast trajectories (and references), write plots/CSV/summary.json to out_dir; return the summary.

    `traj_paths`/`reference_paths`: one path or a list (several files = independent runs of one system; their
    spread gives the D error bar); the reference may instead be one reference-curves JSON file (analysis.reference).
    `overrides` replace AnalysisSettings fields (`analyze(p, out_dir=d, skip_ps=1)`).
    `energy_fn(frames) -> eV per frame` replaces the reference force field of `settings.energy_system`.
    `export_reference`: also write the curves of `traj_paths` there as a reference-curves file, described by
    `export_source` (what run made the trajectory).

    Memory: histograms are accumulated frame by frame; VACF and MSD keep float32 velocities and displacements of
    every analysed frame of one set (forecast or reference), 12·N bytes per frame each (24·N for both), capped by
    `settings.max_memory_gb` (a UserError names --stride/--skip-ps); the FFTs work on ≈ 256 MiB chunks of atoms.
    """
    settings = replace(settings or AnalysisSettings(), **overrides)
    _check_numbers(settings)
    traj_paths, reference_paths = _paths(traj_paths), _paths(reference_paths or [])
    out = _prepare_out_dir(out_dir, overwrite)
    if energy_fn is None and settings.energy_system:
        energy_fn = reference_energy_function(settings.energy_system)
    curves = _reference_curves(reference_paths)
    plan = _plan(traj_paths, [] if curves else reference_paths, settings, energy_fn is not None)
    forecast = _analyse_set(traj_paths, plan, settings, energy_fn, progress)
    if export_reference is not None:
        write_reference_curves(export_reference, forecast, export_source or _describe(forecast, settings),
                               asdict(settings), overwrite)
    if forecast.msd is not None:  # D of both sets over the same lags, whatever their lengths
        settings = replace(settings, msd_fit_ps=tuple(t / 1000.0 for t in forecast.msd.fit_window_fs))
    reference = (_SetResult(**{k: v for k, v in curves.items() if k != "source"}) if curves
                 else _analyse_set(reference_paths, plan, settings, energy_fn, progress) if reference_paths else None)
    if reference is not None and forecast.msd is not None and reference.msd is not None:
        reference.msd = refit(reference.msd, forecast.msd.fit_window_fs)
    if reference is not None and forecast.vdos is not None and reference.vdos is not None:
        reference.vdos = at_resolution_of(reference.vdos, forecast.vdos)
    summary = _summarise(forecast, reference, plan, settings)
    if curves:
        summary["reference"]["source"] = curves["source"]
    summary["outputs"] = _write_outputs(out, forecast, reference, summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(summary: dict) -> str:
    """Side-by-side table (forecast | reference | comparison | verdict) of the numbers in summary.json, the
    notes, and the overall verdict as the last line."""
    verdicts = {v["key"]: Verdict(**v) for v in summary.get("verdicts", [])}

    def verdict(key: str) -> str:
        return verdicts[key].cell() if key in verdicts else ""

    rows = [("quantity", "forecast", "reference", "comparison", "verdict")]
    sets = [summary["forecast"], summary.get("reference")]
    rows.append(("frames × atoms (Δt fs)", *[f"{s['n_frames']} × {s['n_atoms']} ({s['dt_fs']:g})" if s else ""
                                            for s in sets], "", ""))
    temperature = summary.get("temperature")
    if temperature:
        cells = [f"{t['mean_K']:.1f} ± {t['sigma_K']:.1f}" if t else "" for t in
                 (temperature["forecast"], temperature.get("reference"))]
        rows.append(("T mean ± σ (K)", *cells, f"canonical σ {temperature['forecast']['sigma_canonical_K']:.1f}",
                     verdict("temperature")))
        if len(temperature["forecast"]["species_mean_K"]) > 1:
            cells = [" / ".join(f"{k} {v:.0f}" for k, v in t["species_mean_K"].items()) if t else "" for t in
                     (temperature["forecast"], temperature.get("reference"))]
            rows.append(("T per element (K)", *cells, _fmt("gap", temperature["forecast"]["equipartition_gap"]),
                         verdict("equipartition")))
    for label, entry in summary.get("rdf", {}).items():
        cells = [f"{e['peak_r_A']:.2f} Å / {e['peak_g']:.2f}" if e else "" for e in
                 (entry["forecast"], entry.get("reference"))]
        rows.append((f"g {label} 1st peak r / g", *cells, _fmt("Δg", entry.get("deviation")),
                     verdict(f"rdf_peak {label}")))
    for label, entry in summary.get("vdos", {}).items():
        rows.append((f"VDOS {label}", "", "", _fmt("overlap", entry.get("overlap")), verdict(f"vdos_overlap {label}")))
    for label, entry in summary.get("diffusion", {}).items():
        cells = [f"{e['D']:#.3g} ± {e['err']:#.2g}" if e else "" for e in (entry["forecast"], entry.get("reference"))]
        rows.append((f"D {label} (1e-9 m²/s)", *cells, f"α = {entry['forecast']['slope_exponent']:.2f}",
                     verdict(f"D {label}")))
    energy = summary.get("energy")
    if energy:
        cells = [f"{e['mean_ev']:.3f} ± {e['sigma_ev']:.3f}" if e else "" for e in
                 (energy["forecast"], energy.get("reference"))]
        rows.append(("E_pot mean ± σ (eV)", *cells, _fmt("overlap", energy.get("histogram_overlap")), ""))
    widths = [max(len(str(row[k])) for row in rows) for k in range(5)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    closing = [summary["verdict"]] if summary.get("verdict") else []
    return "\n".join(lines + [f"note: {note}" for note in summary.get("notes", [])] + closing)


def _fmt(name, value) -> str:
    return "" if value is None else f"{name} {value:.3f}"


def _reference_curves(reference_paths) -> dict | None:
    """The curves of a reference-curves file given as the only reference, else None (references are MD runs)."""
    curves = [p for p in reference_paths if is_reference_curves(p)]
    if not curves:
        return None
    if len(reference_paths) > 1:
        raise UserError(f"--reference {curves[0]}: a reference-curves file stands alone; give it or MD trajectories")
    return read_reference_curves(curves[0])


def _describe(result: "_SetResult", settings: AnalysisSettings) -> str:
    return (f"{', '.join(Path(p).name for p in result.paths)}: {result.n_atoms} atoms, {result.n_frames} frames "
            f"of {result.dt_fs:g} fs after skipping {settings.skip_ps:g} ps")


def _paths(paths) -> list[Path]:
    return [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]


def _check_numbers(settings: AnalysisSettings) -> None:
    check_positive("--skip-ps", settings.skip_ps, "ps", allow_zero=True)
    for flag, value, unit in (("--dt-fs", settings.dt_fs, "fs"), ("--vacf-max-ps", settings.vacf_max_ps, "ps"),
                              ("--t0", settings.t0_K, "K"), ("--max-memory-gb", settings.max_memory_gb, "GiB")):
        check_positive(flag, value, unit)


def _prepare_out_dir(out_dir, overwrite: bool) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory; choose another path")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"--out {out}: directory exists and is not empty; pass --overwrite or choose a new one")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _plan(traj_paths, reference_paths, settings: AnalysisSettings, have_energy: bool) -> _Plan:
    """Check every file's first frame and decide what can be computed, before any long read."""
    if not traj_paths:
        raise UserError("no trajectory given; pass at least one extxyz file")
    firsts = [peek(p) for p in [*traj_paths, *reference_paths]]
    _check_sets(firsts[:len(traj_paths)], firsts[len(traj_paths):])
    head = firsts[0]
    observables = tuple(settings.observables or _default_observables(head.periodic, settings, have_energy))
    _check_observables(observables, firsts, have_energy)
    plan = _Plan(observables, head.periodic)
    if "rdf" in observables:
        plan.pairs = species_pairs(settings.species_pairs, head.numbers)
        plan.r_max_A = _rdf_range(settings.rdf_rmax_A, firsts)
        for first in firsts[len(traj_paths):]:
            missing = {z for pair in plan.pairs for z in pair} - set(first.numbers.tolist())
            if missing:
                raise UserError(f"{first.path}: reference lacks element {chemical_symbols[missing.pop()]}; "
                                "give a reference of the same chemistry or --species-pairs")
    if "dihedral" in observables:
        plan.quads = [parse_quadruple(text, min(len(f.numbers) for f in firsts)) for text in settings.dihedrals]
        if not plan.quads:
            raise UserError("--observables dihedral needs at least one --dihedral i,j,k,l")
    return plan


def _check_sets(forecast_firsts, reference_firsts) -> None:
    """Files of one set are runs of one system (same atoms, same order); all files share the periodicity."""
    for group in (forecast_firsts, reference_firsts):
        for other in group[1:]:
            if not np.array_equal(other.numbers, group[0].numbers):
                raise UserError(f"{other.path}: atoms differ from {group[0].path}; several files of one set must "
                                "be independent runs of the same system")
    head = forecast_firsts[0]
    for other in [*forecast_firsts[1:], *reference_firsts]:
        if other.periodic != head.periodic:
            raise UserError(f"{other.path}: periodicity differs from {head.path}; compare like with like")


def _check_observables(observables, firsts, have_energy: bool) -> None:
    unknown = [o for o in observables if o not in OBSERVABLES]
    if unknown:
        raise UserError(f"--observables: unknown {unknown[0]!r}; choose from {','.join(OBSERVABLES)}")
    if not firsts[0].periodic and ({"rdf", "msd"} & set(observables)):
        raise UserError(f"{firsts[0].path}: RDF and MSD need a periodic cell (pbc=True); for a molecule use "
                        "--observables vdos,temperature,dihedral")
    if "energy" in observables and not have_energy:
        raise UserError("--observables energy needs --energy-system water|quartz")
    if {"vdos", "temperature"} & set(observables):
        for first in firsts:
            if not first.has_velocities:
                raise UserError(f"{first.path}: no velocities (momenta column); VDOS and temperature need them — "
                                "write frames with velocities or pass --observables rdf,msd")


def _rdf_range(requested_A: float | None, firsts) -> float:
    """One r_max for forecast and reference, so their g(r) share a grid: at most half the narrowest cell."""
    limit = min(half_min_width_A(f.cell) for f in firsts)
    r_max = limit if requested_A is None else float(requested_A)
    if r_max > limit + 1e-9 or r_max <= 0:
        raise UserError(f"--rdf-rmax {r_max:g}: must be in (0, {limit:.3f}] Å, half the shortest "
                        "perpendicular cell width of the given files")
    return r_max


def _default_observables(periodic: bool, settings: AnalysisSettings, have_energy: bool) -> tuple[str, ...]:
    chosen = ["rdf", "vdos", "msd", "temperature"] if periodic else ["vdos", "temperature"]
    if have_energy:
        chosen.append("energy")
    if settings.dihedrals:
        chosen.append("dihedral")
    return tuple(chosen)


def _analyse_set(paths, plan: _Plan, settings: AnalysisSettings, energy_fn, progress: bool) -> _SetResult:
    """Read every file of a set once; histograms accumulate across files, curves are computed at the end."""
    wanted = set(plan.observables)
    numbers = peek(paths[0]).numbers
    masses = units.masses_amu(numbers)
    context = _ReadContext(
        wanted, numbers, masses, degrees_of_freedom(len(numbers), plan.periodic), plan.quads,
        RDFAccumulator(numbers, plan.pairs, plan.r_max_A, settings.bins) if "rdf" in wanted else None,
        EnergyAccumulator(energy_fn) if "energy" in wanted else None,
        # The cap covers the arrays of all files of the set: they are all alive until the VACF/MSD is computed.
        settings.max_memory_gb * 2**30 / (len(wanted & {"vdos", "msd"}) or 1))
    files, dt_fs = [], None
    for path in paths:
        files.append(_read_file(path, context, settings, progress))
        dt_fs = _file_time_step(path, files[-1].times, dt_fs)
    result = _SetResult([str(p) for p in paths], len(numbers), sum(len(f.times) for f in files), dt_fs)
    if context.rdf is not None:
        result.rdf = context.rdf.result()
    if "vdos" in wanted:
        result.vdos = vibrational_dos([f.velocities for f in files], numbers, masses, dt_fs,
                                      1000.0 * settings.vacf_max_ps)
    if "msd" in wanted:
        segments = ([f.displacements for f in files] if len(files) > 1
                    else split_blocks(files[0].displacements, settings.blocks))
        window = None if settings.msd_fit_ps is None else tuple(1000.0 * t for t in settings.msd_fit_ps)
        result.msd = mean_squared_displacement(segments, numbers, masses, dt_fs, fit_window_fs=window)
    if "temperature" in wanted:
        rows = [row for f in files for row in f.species_temperatures]
        result.temperature = temperature_statistics(np.concatenate([f.times for f in files]),
                                                    np.concatenate([f.temperatures for f in files]),
                                                    context.n_dof, settings.t0_K,
                                                    {k: [row[k] for row in rows] for k in rows[0]})
    if context.energies is not None:
        result.energies_ev = context.energies.result()  # flushes the last batch, which may fail too
        result.energy_failure = context.energies.failure
    if "dihedral" in wanted:
        result.angles_deg = np.concatenate([f.angles for f in files])
    return result


@dataclass
class _ReadContext:
    """What every file of one set feeds: the accumulators shared across files and the remaining memory budget."""
    wanted: set
    numbers: np.ndarray
    masses: np.ndarray
    n_dof: int
    quads: list
    rdf: RDFAccumulator | None
    energies: EnergyAccumulator | None
    buffer_bytes: float


@dataclass
class _FileData:
    times: np.ndarray
    temperatures: np.ndarray
    species_temperatures: list[dict[str, float]]
    angles: np.ndarray
    velocities: np.ndarray
    displacements: np.ndarray


def _read_file(path, context: _ReadContext, settings: AnalysisSettings, progress: bool) -> _FileData:
    """One streaming pass over `path`, feeding every wanted observable frame by frame."""
    wanted = context.wanted
    velocities = FrameBuffer("velocities", path, context.buffer_bytes)
    displacements = FrameBuffer("positions", path, context.buffer_bytes)
    times, temperatures, by_species, angles, origin = [], [], [], [], None
    for frame in iter_frames(path, dt_fs=settings.dt_fs, skip_ps=settings.skip_ps, stride=settings.stride,
                             progress=progress):
        times.append(frame.time_fs)
        if context.rdf is not None:
            context.rdf.add(frame.atoms.positions, frame.atoms.cell)
        if {"vdos", "temperature"} & wanted and frame.velocities_A_per_fs is None:
            raise UserError(f"{path}: frame {frame.index} has no velocities; every analysed frame needs them")
        if "vdos" in wanted:
            velocities.append(frame.velocities_A_per_fs)
        if "temperature" in wanted:
            temperatures.append(instantaneous_temperature(frame.velocities_A_per_fs, context.masses, context.n_dof))
            by_species.append(species_temperatures(frame.velocities_A_per_fs, context.masses, context.numbers,
                                                   context.n_dof))
        if "msd" in wanted:
            # Displacements from the first frame: float32 keeps its precision however far atoms diffuse.
            origin = frame.unwrapped_A if origin is None else origin
            displacements.append(frame.unwrapped_A - origin)
        if "dihedral" in wanted:
            angles.append(dihedral_angles(frame.unwrapped_A, context.quads, frame.atoms.cell, frame.atoms.pbc))
        if context.energies is not None:
            context.energies.add(frame.atoms)
    data = _FileData(np.array(times), np.array(temperatures), by_species,
                     np.array(angles).reshape(len(angles), len(context.quads)), velocities.array(),
                     displacements.array())
    context.buffer_bytes -= max(data.velocities.nbytes, data.displacements.nbytes)
    return data


def _file_time_step(path, times, previous_dt) -> float:
    if len(times) < 2:
        raise UserError(f"{path}: {len(times)} frame(s) left after --skip-ps/--stride; need at least 2")
    dt = times[1] - times[0]
    if previous_dt is not None and abs(dt - previous_dt) > 1e-6 * previous_dt:
        raise UserError(f"{path}: frames are {dt:g} fs apart, other files of the set {previous_dt:g} fs; "
                        "use one stride for all runs of a set")
    return dt


def _summarise(forecast: _SetResult, reference: _SetResult | None, plan: _Plan, settings) -> dict:
    """Comparison numbers; also finishes the observables that need both sets (shared energy bins, T for F(φ))."""
    sets = {name: s for name, s in (("forecast", forecast), ("reference", reference)) if s is not None}
    summary = {"forecast": _set_info(forecast), "reference": _set_info(reference) if reference else None,
               "settings": asdict(settings), "definitions": DEFINITIONS, "notes": []}

    def having(attr: str) -> dict:
        """The sets that have an observable: a reference-curves file holds no energies or dihedrals."""
        return {name: s for name, s in sets.items() if getattr(s, attr) is not None}

    if forecast.rdf is not None:
        summary["rdf"] = _compare_rdf(having("rdf"))
    if forecast.vdos is not None and "reference" in having("vdos"):
        summary["vdos"] = _compare_vdos(forecast.vdos, reference.vdos)
    if forecast.msd is not None:
        summary["diffusion"] = _compare_diffusion(having("msd"))
        summary["notes"] += _diffusive_window_notes(summary["diffusion"])
    if forecast.temperature is not None:
        summary["temperature"] = {name: {k: getattr(s.temperature, k) for k in
                                         ("mean_K", "sigma_K", "t0_K", "sigma_canonical_K", "n_dof",
                                          "species_mean_K")} | {"equipartition_gap": equipartition_gap(s.temperature)}
                                  for name, s in having("temperature").items()}
        summary["notes"] += _equipartition_notes(summary["temperature"])
    summary["notes"] += [f"energy ({name}: {', '.join(Path(p).name for p in s.paths)}) not computed from "
                         f"{s.energy_failure}; the other observables use every frame"
                         for name, s in sets.items() if s.energy_failure]
    if forecast.energies_ev is not None:
        _finish_energy(forecast, having("energies_ev").get("reference"), summary)
    if forecast.angles_deg is not None:
        _finish_dihedrals(having("angles_deg"), plan, settings, summary)
    verdicts = judge(summary)
    summary["tolerances"] = asdict(TOLERANCES)
    summary["verdicts"] = [asdict(v) for v in verdicts]
    summary["verdict"] = overall_verdict(verdicts) if verdicts else None
    return summary


def _equipartition_notes(temperature: dict) -> list[str]:
    notes = []
    for name, entry in temperature.items():
        if entry["equipartition_gap"] > TOLERANCES.equipartition_gap:
            per = ", ".join(f"T_{k} {v:.0f} K" for k, v in entry["species_mean_K"].items())
            notes.append(f"{name}: the elements are not at one temperature ({per}; T {entry['mean_K']:.0f} K) — "
                         "energy has moved between kinds of motion, which a global thermostat does not undo")
    return notes


def _compare_rdf(sets: dict) -> dict:
    comparison = {}
    for label in sets["forecast"].rdf.g:
        entry = {name: _peak(s.rdf, label) for name, s in sets.items()}
        if "reference" in sets:
            entry["deviation"] = rdf_deviation(sets["forecast"].rdf.r_A, sets["forecast"].rdf.g[label],
                                               sets["reference"].rdf.g[label], sets["reference"].rdf.r_A)
        comparison[label] = entry
    return comparison


def _compare_vdos(vdos, vdos_ref) -> dict:
    comparison = {}
    for label in vdos.vdos:
        if label in vdos_ref.vdos:
            spectra = (vdos.frequency_THz, vdos.vdos[label], vdos_ref.frequency_THz, vdos_ref.vdos[label])
            comparison[label] = {"overlap": overlap_score(*spectra), "cosine": cosine_overlap(*spectra)}
    return comparison


def _compare_diffusion(sets: dict) -> dict:
    return {label: {name: {"D": s.msd.D[label], "err": s.msd.D_err[label],
                           "slope_exponent": s.msd.slope_exponent[label],
                           "fit_window_ps": [t / 1000.0 for t in s.msd.fit_window_fs], "segments": s.msd.n_segments}
                    for name, s in sets.items()}
            for label in sets["forecast"].msd.D}


def _diffusive_window_notes(diffusion: dict) -> list[str]:
    return [f"D {label} ({name}): MSD ~ tau^{entry[name]['slope_exponent']:.2f} in the fit window, not diffusive "
            "(want 1); choose a later --msd-fit-ps or a longer trajectory"
            for label, entry in diffusion.items() for name in entry
            if not abs(entry[name]["slope_exponent"] - 1.0) <= TOLERANCES.diffusive_slope]


def _set_info(s: _SetResult) -> dict:
    return {"files": s.paths, "n_frames": s.n_frames, "n_atoms": s.n_atoms, "dt_fs": s.dt_fs}


def _peak(rdf, label) -> dict:
    r, g = first_peak(rdf.r_A, rdf.g[label])
    return {"peak_r_A": r, "peak_g": g, "bin_A": float(rdf.edges_A[1] - rdf.edges_A[0])}


def _finish_energy(forecast: _SetResult, reference: _SetResult | None, summary: dict) -> None:
    if reference is not None:
        overlap, edges = histogram_overlap(forecast.energies_ev, reference.energies_ev)
        reference.energy = energy_distribution(reference.energies_ev, edges)
    else:
        overlap, edges = None, shared_edges(forecast.energies_ev)
    forecast.energy = energy_distribution(forecast.energies_ev, edges)
    summary["energy"] = {name: {"mean_ev": s.energy.mean_ev, "sigma_ev": s.energy.sigma_ev}
                         for name, s in (("forecast", forecast), ("reference", reference)) if s is not None}
    summary["energy"]["histogram_overlap"] = overlap


def _finish_dihedrals(sets: dict, plan: _Plan, settings: AnalysisSettings, summary: dict) -> None:
    """F(φ) uses T0 when given, else each set's mean temperature, else 300 K (said in summary.json)."""
    summary["dihedral"] = {}
    for name, s in sets.items():
        temperature = (settings.t0_K if settings.t0_K is not None
                       else s.temperature.mean_K if s.temperature is not None else 300.0)
        s.dihedral = dihedral_free_energy(s.angles_deg, plan.quads, temperature)
        for label, f in s.dihedral.free_energy_ev.items():
            entry = summary["dihedral"].setdefault(label, {})
            entry[name] = {"temperature_K": temperature, "max_free_energy_ev": float(np.nanmax(f)),
                           "minimum_deg": float(s.dihedral.angle_deg[np.nanargmin(f)])}


def _write_outputs(out: Path, forecast: _SetResult, reference: _SetResult | None, summary: dict) -> list[str]:
    written = []
    for name, s in (("", forecast), ("_reference", reference)):
        if s is None:
            continue
        for stem, columns in _curves(s).items():
            written.append(_write_csv(out / f"{stem}{name}.csv", columns))
    ref = (lambda attr: getattr(reference, attr)) if reference is not None else (lambda attr: None)
    figures = {
        "rdf": lambda p: plots.plot_rdf(forecast.rdf, ref("rdf"), p),
        "vdos": lambda p: plots.plot_vdos(forecast.vdos, ref("vdos"), p,
                                          {k: v["overlap"] for k, v in summary.get("vdos", {}).items()}),
        "msd": lambda p: plots.plot_msd(forecast.msd, ref("msd"), p),
        "temperature": lambda p: plots.plot_temperature(forecast.temperature, ref("temperature"), p),
        "energy": lambda p: plots.plot_energy(forecast.energy, ref("energy"), p,
                                              summary.get("energy", {}).get("histogram_overlap")),
        "dihedral": lambda p: plots.plot_dihedrals(forecast.dihedral, ref("dihedral"), p),
    }
    for name, draw in figures.items():
        if getattr(forecast, name) is not None:
            draw(out / f"{name}.png")
            written.append(str(out / f"{name}.png"))
    return [Path(p).name for p in written] + ["summary.json"]


def _curves(s: _SetResult) -> dict[str, dict[str, np.ndarray]]:
    curves = {}
    if s.rdf is not None:
        curves["rdf"] = {"r_A": s.rdf.r_A, **{f"g_{k}": v for k, v in s.rdf.g.items()},
                         **{f"coordination_{k}": v for k, v in s.rdf.coordination.items()}}
    if s.vdos is not None:
        curves["vacf"] = {"lag_fs": s.vdos.lag_fs, **{f"vacf_{k}": v for k, v in s.vdos.vacf.items()}}
        curves["vdos"] = {"frequency_THz": s.vdos.frequency_THz, "wavenumber_cm1": s.vdos.frequency_cm1,
                          **{f"vdos_{k}": v for k, v in s.vdos.vdos.items()}}
    if s.msd is not None:
        curves["msd"] = {"lag_fs": s.msd.lag_fs, **{f"msd_A2_{k}": v for k, v in s.msd.msd.items()},
                         **{f"msd_err_A2_{k}": v for k, v in s.msd.msd_err.items()}}
    if s.temperature is not None:
        curves["temperature"] = {"time_fs": s.temperature.time_fs, "temperature_K": s.temperature.temperature_K,
                                 **{f"temperature_K_{k}": v for k, v in s.temperature.species_temperature_K.items()}}
    if s.energies_ev is not None:
        curves["energy"] = {"frame": np.arange(s.energies_ev.size), "energy_ev": s.energies_ev}
    if s.dihedral is not None:
        curves["dihedral"] = {"angle_deg": s.dihedral.angle_deg,
                              **{f"p_{k}": v for k, v in s.dihedral.probability.items()},
                              **{f"F_ev_{k}": v for k, v in s.dihedral.free_energy_ev.items()}}
    return curves


def _write_csv(path: Path, columns: dict[str, np.ndarray]) -> str:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in zip(*columns.values()):
            writer.writerow([f"{float(x):.8g}" for x in row])
    return str(path)
