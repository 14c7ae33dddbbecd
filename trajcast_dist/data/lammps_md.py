"""Reference trajectories from LAMMPS, following the paper's protocol (Methods, "Reference Data Sets").

Equilibrate in NVT (system-specific stages), sample candidate start configurations from the last stage,
keep those within ±window of the target temperature (paracetamol: total energy within a relative 0.001 of
its mean), pick `n_trajectories` of them at random at least `start_separation_fs` apart, then run NVE
(training data) or thermostatted NVT (validation reference: CSVR as in the paper, or per-atom Langevin to compare
with a model forecast under `--thermostat langevin`) from each. Frames go to DIR/traj_000.xyz,
... (extxyz: positions, velocities, cell, time_fs, step, potential_energy_eV; an isolated molecule is written
with pbc False and no cell); the LAMMPS input script (in.lammps) and log (log.lammps) are kept beside them.

Resumable: the chosen starts are saved (starts.npz) and each finished trajectory is renamed from
`.partial` when complete, so re-running with `resume=True` skips finished work.

`potential_energies(frames, system)` re-evaluates frames with the reference force field (LAMMPS `run 0`
per frame, the equivalent of `rerun`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import ase.data
import ase.io
import numpy as np
from ase.calculators.lammps import Prism

from trajcast_dist import units
from trajcast_dist.data.lammps_session import LammpsSession, lammps_seed
from trajcast_dist.data.systems import get_system
from trajcast_dist.errors import UserError, check_positive
from trajcast_dist.progress import progress_bar

ENSEMBLES = ("nve", "nvt-csvr", "nvt-langevin")

__all__ = ["ENSEMBLES", "run_reference_md", "potential_energies", "select_starts", "select_starts_by_energy"]


def run_reference_md(system: str, out_dir, *, temperature_K: float = 300.0, equilibrate_ps: float | None = None,
                     production_ps: float = 50.0, n_trajectories: int = 5, seed: int = 0,
                     ensemble: str = "nve", stride_fs: float = 5.0, repeat=(1, 1, 1), overwrite: bool = False,
                     resume: bool = False, progress: bool = True, tau_fs: float | None = None,
                     element_temperatures: dict[int, float] | None = None) -> list[Path]:
    """Run the protocol and return the trajectory paths (see module docstring). `tau_fs`: the production
    thermostat's relaxation time (default: the system's CSVR τ of the paper). `element_temperatures` {Z: K}:
    rescale each named element's start velocities to that temperature (net momentum removed), so the run records
    how the dynamics restores equipartition from a state a drifting model visits (issue #13)."""
    spec = get_system(system)
    out_dir = Path(out_dir)
    check_positive("--temperature", temperature_K, "K")
    check_positive("--equilibrate-ps", equilibrate_ps, "ps", allow_zero=True)
    if ensemble not in ENSEMBLES:
        raise UserError(f"--ensemble {ensemble!r} is not known; use {', '.join(ENSEMBLES)}")
    if ensemble == "nvt-langevin" and not spec.periodic:
        raise UserError(f"--ensemble nvt-langevin: {system} is an isolated molecule, whose angular momentum a "
                        "per-atom thermostat does not keep; use nvt-csvr")
    check_positive("--tau-fs", tau_fs, "fs")
    tau_fs = spec.csvr_tau_fs if tau_fs is None else tau_fs
    stride = _steps(stride_fs, spec.timestep_fs, "--stride-fs")
    production_steps = _steps(production_ps * 1000.0, spec.timestep_fs, "--production-ps")
    if production_steps % stride:
        raise UserError(f"--production-ps {production_ps} is not a multiple of --stride-fs {stride_fs}")
    equilibrate_fs = (equilibrate_ps if equilibrate_ps is not None else _default_equilibration_ps(system)) * 1000
    paths = [out_dir / f"traj_{k:03d}.xyz" for k in range(n_trajectories)]
    _prepare_out_dir(out_dir, overwrite, resume)

    session = LammpsSession(spec.unit_style, log_path=out_dir / "log.lammps")
    try:
        numbers = spec.build(session, out_dir, repeat, seed)
        _check_elements(element_temperatures, numbers)
        starts = _load_or_make_starts(session, spec, out_dir / "starts.npz", temperature_K, equilibrate_fs,
                                      n_trajectories, seed, resume, progress)
        for k, path in enumerate(paths):
            if resume and path.exists():
                continue
            start = _set_element_temperatures(starts[k], numbers, element_temperatures, session)
            _production(session, spec, start, numbers, path, ensemble, tau_fs, temperature_K, production_steps,
                        stride, seed + 1000 + k, progress, label=f"{system} {ensemble} {k + 1}/{n_trajectories}")
    finally:
        if session.is_main:
            (out_dir / "in.lammps").write_text("\n".join(session.script) + "\n")
        session.close()
    return paths


def select_starts(times_fs, temperatures_K, target_K: float, window_K: float, separation_fs: float,
                  n: int, seed: int) -> list[int]:
    """Indices of `n` candidates within ±window_K of target_K, drawn at random, pairwise ≥ separation_fs apart."""
    times_fs, temperatures_K = np.asarray(times_fs), np.asarray(temperatures_K)
    eligible = np.flatnonzero(np.abs(temperatures_K - target_K) <= window_K)
    return _pick_apart(times_fs, eligible, separation_fs, n, seed, f"within ±{window_K} K of {target_K} K")


def select_starts_by_energy(times_fs, total_energies, rel_tol: float, separation_fs: float, n: int,
                            seed: int) -> list[int]:
    """Indices of `n` candidates with |E - mean(E)| ≤ rel_tol·|mean(E)|, drawn at random, ≥ separation_fs apart."""
    times_fs, energies = np.asarray(times_fs), np.asarray(total_energies, dtype=np.float64)
    mean = energies.mean()
    eligible = np.flatnonzero(np.abs(energies - mean) <= rel_tol * abs(mean))
    return _pick_apart(times_fs, eligible, separation_fs, n, seed,
                       f"with total energy within a relative {rel_tol:g} of its mean {mean:.6g}")


def _pick_apart(times_fs, eligible, separation_fs: float, n: int, seed: int, criterion: str) -> list[int]:
    chosen: list[int] = []
    for i in np.random.default_rng(seed).permutation(eligible):
        if all(abs(times_fs[i] - times_fs[j]) >= separation_fs for j in chosen):
            chosen.append(int(i))
        if len(chosen) == n:
            return sorted(chosen)
    raise UserError(f"only {len(chosen)} of {n} start configurations {criterion} and "
                    f"{separation_fs} fs apart were found; increase --equilibrate-ps or lower --trajectories")


def potential_energies(frames, system: str) -> np.ndarray:
    """Potential energy (eV) of each ASE frame under the reference force field of `system`.

    Equivalent to LAMMPS `rerun`: the topology is built from the first frame, then each frame's positions
    (and cell, if it changes) are set and `run 0` evaluates the energy. All frames must have the same atoms.
    """
    frames = list(frames)
    if not frames:
        return np.zeros(0)
    spec = get_system(system)
    energies = np.empty(len(frames))
    with tempfile.TemporaryDirectory() as tmp:
        session = LammpsSession(spec.unit_style)
        try:
            spec.load(session, frames[0], Path(tmp))
            cell = np.asarray(frames[0].cell)
            for i, atoms in enumerate(frames):
                if len(atoms) != len(frames[0]) or not np.array_equal(atoms.numbers, frames[0].numbers):
                    raise UserError(f"frame {i} has different atoms from frame 0; rerun needs a fixed set of atoms")
                if not spec.periodic:  # an isolated molecule: centred in the fixed non-periodic box
                    origin, _ = session.cell()
                    positions = atoms.positions - atoms.positions.mean(axis=0) - origin
                else:
                    if not np.allclose(atoms.cell, cell):
                        _set_cell(session, atoms)
                        cell = np.asarray(atoms.cell)
                    prism = Prism(np.asarray(atoms.cell), pbc=atoms.pbc)
                    positions = prism.vector_to_lammps(atoms.positions, wrap=True)
                session.scatter({"positions": positions})
                session.command("run 0")
                energies[i] = session.potential_energy_ev()
        finally:
            session.close()
    return energies


# --- protocol pieces -------------------------------------------------------------------------------------
def _load_or_make_starts(session, spec, path: Path, temperature_K, equilibrate_fs, n, seed, resume, progress):
    if resume and path.exists():
        with np.load(path) as saved:
            session.note(f"start configurations loaded from {path}")
            return [{k: saved[f"{k}_{i}"] for k in ("positions", "velocities", "image")} for i in range(n)]
    stages = spec.equilibration(temperature_K, equilibrate_fs, seed)
    every = max(1, int(round(spec.candidate_every_fs / spec.timestep_fs)))
    times, temps, energies, states = [], [], [], []
    bar = progress_bar(total=sum(s.steps for s in stages), desc=f"{spec.name} equilibration", unit="step",
                       enabled=progress and session.is_main)
    for k, stage in enumerate(stages):
        session.commands(stage.commands)
        last, previous = k == len(stages) - 1, 0
        for done in session.run_chunks(stage.steps, every):
            bar.update(done - previous)
            previous = done
            # Candidates come from the second half of the last stage: the system has relaxed by then.
            if last and done >= stage.steps // 2:
                times.append(done * spec.timestep_fs)
                temps.append(session.thermo("temp"))
                energies.append(session.thermo("etotal"))
                states.append(session.gather())
        for fix in stage.fixes:
            session.command(f"unfix {fix}")
    bar.close()
    if spec.start_energy_rel_tol is not None:
        chosen = select_starts_by_energy(times, energies, spec.start_energy_rel_tol, spec.start_separation_fs, n,
                                         seed)
    else:
        chosen = select_starts(times, temps, temperature_K, spec.start_window_K, spec.start_separation_fs, n, seed)
    starts = [states[i] for i in chosen]
    energies_ev = np.array(energies) * session.energy_ev
    if session.is_main:
        np.savez(path, times_fs=np.array(times)[chosen], temperatures_K=np.array(temps)[chosen],
                 total_energies_eV=energies_ev[chosen],
                 **{f"{k}_{i}": s[k] for i, s in enumerate(starts) for k in s})
    session.note(f"starts chosen at t = {[times[i] for i in chosen]} fs of the last equilibration stage "
                 f"(T = {[round(temps[i], 2) for i in chosen]} K, E_total = "
                 f"{[round(float(energies_ev[i]), 6) for i in chosen]} eV; mean of {len(times)} candidates "
                 f"{energies_ev.mean():.6f} eV)")
    return starts


def _check_elements(element_temperatures, numbers) -> None:
    for z, kelvin in (element_temperatures or {}).items():
        if z not in numbers:
            raise UserError(f"--element-temperatures: the system has no {ase.data.chemical_symbols[z]} atoms")
        check_positive("--element-temperatures", kelvin, "K")


def _set_element_temperatures(start: dict, numbers, element_temperatures, session) -> dict:
    if not element_temperatures:
        return start
    numbers, velocities = np.asarray(numbers), start["velocities"].copy()
    masses = units.masses_amu(numbers)
    for z, kelvin in element_temperatures.items():
        mask = numbers == z
        now = units.temperature_k(units.kinetic_energy_ev(masses[mask], velocities[mask]), 3 * int(mask.sum()))
        velocities[mask] *= np.sqrt(kelvin / now)
    velocities -= (masses[:, None] * velocities).sum(0) / masses.sum()
    session.note("start velocities rescaled per element to " + ", ".join(
        f"{ase.data.chemical_symbols[z]} {kelvin} K" for z, kelvin in element_temperatures.items()))
    return {**start, "velocities": velocities}


def _production(session, spec, start, numbers, path: Path, ensemble, tau_fs, temperature_K, steps, stride, seed,
                progress, label):
    session.note(f"{path.name}: scatter start configuration (positions, velocities, image flags)")
    session.scatter(start)
    session.command("reset_timestep 0")
    if ensemble == "nvt-langevin":  # before fix nve, as gjf requires
        # zero yes: the noise adds no net momentum, as in the forecast's Langevin. gjf vhalf: the
        # Grønbech-Jensen/Farago discretisation, whose configurational sampling does not depend on the time step.
        # (Both it and the default read 305-306 K for SPC/Fw at a 300 K target, H 307 / O 302 K, at 0.5 fs.)
        session.command(f"fix langevin all langevin {temperature_K} {temperature_K} "
                        f"{tau_fs / session.fs_per_time} {lammps_seed(seed)} zero yes gjf vhalf")
    session.command("fix prod all nve")
    if ensemble == "nvt-csvr":
        session.command(f"fix csvr all temp/csvr {temperature_K} {temperature_K} "
                        f"{tau_fs / session.fs_per_time} {lammps_seed(seed)}")
        session.commands(spec.csvr_commands)
    session.command("run 0 post no")  # evaluates the energy of the start frame
    partial = path.with_suffix(".xyz.partial")
    handle = open(partial, "w") if session.is_main else None
    try:
        with progress_bar(total=steps, desc=label, unit="step", enabled=progress and session.is_main) as bar:
            _write_frame(handle, session, spec, numbers, 0)
            for step in session.run_chunks(steps, stride):
                bar.update(stride)  # steps is a multiple of stride
                _write_frame(handle, session, spec, numbers, step)
    finally:
        if handle:
            handle.close()
    session.command("unfix prod")
    if ensemble == "nvt-csvr":
        session.command("unfix csvr")
        for fix in spec.csvr_fixes:
            session.command(f"unfix {fix}")
    elif ensemble == "nvt-langevin":
        session.command("unfix langevin")
    if session.is_main:
        os.replace(partial, path)


def _write_frame(handle, session, spec, numbers, step: int) -> None:
    state = session.gather()  # collective: every rank takes part, rank 0 writes
    if handle:
        atoms = session.atoms(numbers, step * spec.timestep_fs, step, state)
        if not spec.periodic:  # isolated molecule: LAMMPS coordinates as they are, no cell, pbc False
            origin, _ = session.cell()
            atoms.set_cell(np.zeros((3, 3)))
            atoms.pbc = False
            atoms.positions = state["positions"] + origin
        ase.io.write(handle, atoms, format="extxyz")


def _prepare_out_dir(out_dir: Path, overwrite: bool, resume: bool) -> None:
    existing = sorted(out_dir.glob("traj_*.xyz*")) if out_dir.exists() else []
    if existing and not (overwrite or resume):
        raise UserError(f"{out_dir} already holds trajectories ({existing[0].name}, ...); "
                        "pass --overwrite to replace them or --resume to continue")
    out_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for old in existing + [out_dir / "starts.npz"]:
            old.unlink(missing_ok=True)


def _default_equilibration_ps(system: str) -> float:
    # Paper: water 10 ps NVT; quartz 10 ps NpT + 50 ps NVT; paracetamol 25 ps NVT.
    return {"water": 10.0, "quartz": 60.0, "paracetamol": 25.0}[system]


def _steps(duration_fs: float, timestep_fs: float, flag: str) -> int:
    steps = duration_fs / timestep_fs
    if steps < 1 or abs(steps - round(steps)) > 1e-6:
        raise UserError(f"{flag}: {duration_fs} fs is not a positive multiple of the {timestep_fs} fs time step")
    return int(round(steps))


def _set_cell(session, atoms) -> None:
    prism = Prism(np.asarray(atoms.cell), pbc=atoms.pbc)
    xhi, yhi, zhi, xy, xz, yz = prism.get_lammps_prism()
    tilt = f" xy final {xy} xz final {xz} yz final {yz}" if prism.is_skewed() else ""
    session.command(f"change_box all x final 0 {xhi} y final 0 {yhi} z final 0 {zhi}{tilt} remap none")

