"""Training pairs (x_t, x_{t+Δt}) from MD trajectories, written to a sharded zarr store (paper Methods, "Training").

Inputs are positions, velocities, species, cell and pbc at t; targets are the minimum-image displacement
r(t+Δt) − r(t) (fractional-coordinate minimum image along periodic axes, valid for triclinic cells) and the
velocity at t+Δt. Validation and test frames come from trajectories other than the training ones
(`split_by_trajectory`, or `split` fractions assigned to whole trajectories); only when there are fewer
trajectories than splits are fractions taken as disjoint time blocks of each trajectory, with no frame shared
between splits. Statistics the model needs (target RMS, neighbour count, temperature, Maxwell–Boltzmann RMS
speed of the lightest species) are computed on the training split only.

Everything is read and checked before anything is written; the store is built under a temporary name and
moved into place at the end, so a failed or interrupted run leaves no store behind.
"""

from __future__ import annotations

import datetime
import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np

from trajcast_dist import __version__, units
from trajcast_dist.data.frames import Trajectory, frame_spacing_fs, read_trajectory
from trajcast_dist.data.store import PairStoreWriter, check_replaceable, commit_store
from trajcast_dist.dynamics.thermostat import degrees_of_freedom
from trajcast_dist.errors import UserError, check_positive
from trajcast_dist.graph.graph import neighbor_pairs
from trajcast_dist.io.atomic import remove_stale_temporaries, temporary_name
from trajcast_dist.progress import progress_bar

__all__ = ["build_pairs", "minimum_image_displacement", "parse_split"]

# A true displacement this close to half a box cannot be told from its periodic image.
_MAX_FRACTIONAL_DISPLACEMENT = 0.45
# Tolerated gap (in box fractions) between the displacement and the velocity estimate ½(v_t + v_t+Δt)Δt.
_MAX_VELOCITY_MISMATCH = 0.25


def build_pairs(paths, dt_fs: float, out, *, cutoff_A: float = 6.0, split: dict | None = None,
                split_by_trajectory: dict | None = None, shard_frames: int = 256, max_pairs: int | None = None,
                frame_fs: float | None = None, overwrite: bool = False, command: str | None = None,
                progress: bool = True) -> Path:
    """Build the store at `out` from trajectory files; returns its path. See the module docstring."""
    for flag, value, unit in (("--dt", dt_fs, "fs"), ("--cutoff", cutoff_A, "Å"), ("--frame-fs", frame_fs, "fs")):
        check_positive(flag, value, unit)
    out = Path(out).resolve()  # `.` has no name to put a temporary store beside
    check_replaceable(out, overwrite)
    if split is not None and split_by_trajectory is not None:
        raise UserError("give either --split or --split-by-trajectory, not both")
    if shard_frames < 1:
        raise UserError(f"--shard-frames {shard_frames}: must be at least 1")
    trajectories = [read_trajectory(p, frame_fs=frame_fs) for p in
                    progress_bar(paths, desc="reading", unit="file", enabled=progress)]
    lags = [_lag(t, dt_fs) for t in trajectories]
    plan = _plan(trajectories, lags, split, split_by_trajectory, max_pairs)
    for name, pairs in plan.items():
        for k, start in pairs:
            _check_spacing(trajectories[k], start, lags[k], dt_fs)
    species = sorted({int(z) for t in trajectories for z in t.species})
    max_atoms = max(t.n_atoms for t in trajectories)

    remove_stale_temporaries(out, "tmp-")  # stores half-built by killed runs
    tmp = temporary_name(out, "tmp-")
    try:
        writer = PairStoreWriter(tmp, shard_frames)
        statistics = None
        for name, pairs in plan.items():
            split_writer = writer.create_split(name, len(pairs), max_atoms)
            frames = (_pair(trajectories[k], start, lags[k]) for k, start in pairs)
            if name == "train":
                frames = _Accumulator(frames, cutoff_A)
            for frame in progress_bar(frames, total=len(pairs), desc=f"writing {name}", unit="pair",
                                      enabled=progress):
                split_writer.append(frame)
            split_writer.flush()
            if name == "train":
                statistics = frames.statistics()
        writer.set_attrs({
            "species": species, "dt_fs": float(dt_fs), "cutoff_A": float(cutoff_A),
            "units": {"length": "Å", "time": "fs", "velocity": "Å/fs", "mass": "amu", "energy": "eV"},
            "statistics": statistics,
            "splits": {name: _describe(trajectories, pairs) for name, pairs in plan.items()},
            "provenance": _provenance(paths, command),
        })
        commit_store(tmp, out, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def minimum_image_displacement(r0, r1, cell, pbc) -> np.ndarray:
    """r1 − r0 wrapped to the nearest periodic image along periodic axes (fractional coordinates; triclinic-safe)."""
    d = np.asarray(r1, dtype=np.float64) - np.asarray(r0, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    if not pbc.any():
        return d
    frac = d @ np.linalg.inv(cell)
    frac[..., pbc] -= np.round(frac[..., pbc])
    return frac @ cell


def parse_split(text: str, integer: bool) -> dict:
    """'train=0.8,val=0.2' → {'train': 0.8, 'val': 0.2} (integers for counts)."""
    result = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            result[name.strip()] = int(value) if integer else float(value)
        except ValueError:
            raise UserError(f"split {text!r}: {item!r} is not NAME={'COUNT' if integer else 'FRACTION'}") from None
        if not sep or not name.strip() or result[name.strip()] < 0:
            raise UserError(f"split {text!r}: {item!r} is not NAME={'COUNT' if integer else 'FRACTION'}")
    if "train" not in result:
        raise UserError(f"split {text!r} has no 'train' part; statistics come from the training split")
    return result


# --- planning: which (trajectory, start frame) pairs go to which split ---------------------------------------
def _lag(trajectory: Trajectory, dt_fs: float) -> int:
    spacing = frame_spacing_fs(trajectory)
    lag = dt_fs / spacing
    if dt_fs <= 0 or abs(lag - round(lag)) > 1e-6 * max(1.0, lag) or round(lag) < 1:
        raise UserError(f"{trajectory.path}: --dt {dt_fs} fs is not a multiple of the frame spacing {spacing} fs")
    if round(lag) >= trajectory.n_frames:
        raise UserError(f"{trajectory.path}: --dt {dt_fs} fs spans {round(lag)} frames but the file has only "
                        f"{trajectory.n_frames}")
    return int(round(lag))


def _plan(trajectories, lags, split, split_by_trajectory, max_pairs) -> dict:
    n = len(trajectories)
    if split_by_trajectory is not None:
        if sum(split_by_trajectory.values()) != n:
            raise UserError(f"--split-by-trajectory asks for {sum(split_by_trajectory.values())} trajectories "
                            f"but {n} files were given")
        owners = [name for name, count in split_by_trajectory.items() for _ in range(count)]
        plan = {name: [] for name in split_by_trajectory}
        for k, name in enumerate(owners):
            plan[name] += [(k, s) for s in range(trajectories[k].n_frames - lags[k])]
    else:
        fractions = {name: f for name, f in (split or {"train": 0.8, "val": 0.2}).items() if f > 0}
        if not np.isclose(sum(fractions.values()), 1.0):
            raise UserError(f"--split fractions add up to {sum(fractions.values())}, not 1")
        if n >= len(fractions):
            plan = _by_whole_trajectory(trajectories, lags, fractions)
        else:
            plan = _by_time_blocks(trajectories, lags, fractions)
    for name, pairs in plan.items():
        if not pairs:
            raise UserError(f"split {name!r} gets no pairs; give longer trajectories or change the split")
    if max_pairs is not None:
        plan = {name: _evenly(pairs, max_pairs) for name, pairs in plan.items()}
    return plan


def _by_whole_trajectory(trajectories, lags, fractions) -> dict:
    counts = [t.n_frames - lag for t, lag in zip(trajectories, lags)]
    names = list(fractions)
    # Every split gets at least one trajectory; the rest go where the pair-count deficit is largest.
    owners = {k: names[k] for k in range(len(names))}
    totals = {name: counts[k] for k, name in owners.items()}
    for k in range(len(names), len(trajectories)):
        target = sum(counts[: k + 1])
        name = max(names, key=lambda s: fractions[s] * target - totals[s])
        owners[k], totals[name] = name, totals[name] + counts[k]
    plan = {name: [] for name in names}
    for k, name in owners.items():
        plan[name] += [(k, s) for s in range(counts[k])]
    return plan


def _by_time_blocks(trajectories, lags, fractions) -> dict:
    plan = {name: [] for name in fractions}
    for k, (t, lag) in enumerate(zip(trajectories, lags)):
        edges = np.round(np.cumsum([0.0, *fractions.values()]) * t.n_frames).astype(int)
        for name, a, b in zip(fractions, edges[:-1], edges[1:]):
            plan[name] += [(k, s) for s in range(a, b - lag)]  # both frames of a pair inside [a, b)
    return plan


def _evenly(pairs: list, limit: int) -> list:
    if len(pairs) <= limit:
        return pairs
    return [pairs[i] for i in np.unique(np.linspace(0, len(pairs) - 1, limit).round().astype(int))]


def _describe(trajectories, pairs) -> dict:
    ranges: dict[str, list] = {}
    for k, start in pairs:
        ranges.setdefault(str(trajectories[k].path.resolve()), []).append(start)
    return {"n_frames": len(pairs),
            "sources": [{"file": f, "first_frame": min(s), "last_frame": max(s), "n_pairs": len(s)}
                        for f, s in ranges.items()]}


# --- pairs and their checks ------------------------------------------------------------------------------
def _pair(t: Trajectory, start: int, lag: int) -> dict:
    end = start + lag
    return {"positions": t.positions[start], "velocities": t.velocities[start], "species": t.species,
            "cell": t.cell[start], "pbc": t.pbc,
            "target_displacement": minimum_image_displacement(t.positions[start], t.positions[end], t.cell[start],
                                                              t.pbc),
            "target_velocity": t.velocities[end]}


def _check_spacing(t: Trajectory, start: int, lag: int, dt_fs: float) -> None:
    pair = _pair(t, start, lag)
    if not t.pbc.any():
        return
    inverse = np.linalg.inv(t.cell[start])
    frac = (pair["target_displacement"] @ inverse)[:, t.pbc]
    estimate = 0.5 * (pair["velocities"] + pair["target_velocity"]) * dt_fs
    mismatch = ((pair["target_displacement"] - estimate) @ inverse)[:, t.pbc]
    if np.abs(frac).max() > _MAX_FRACTIONAL_DISPLACEMENT or np.abs(mismatch).max() > _MAX_VELOCITY_MISMATCH:
        raise UserError(f"{t.path}: frame {start} -> {start + lag}: an atom moves about half a box length or more "
                        f"in {dt_fs} fs (frame spacing too coarse); use a trajectory with finer frames or smaller --dt")


class _Accumulator:
    """Passes frames through while summing what the training statistics need."""

    def __init__(self, frames, cutoff_A: float):
        self.frames, self.cutoff_A = frames, cutoff_A
        self.sum_d2 = self.sum_v2 = 0.0
        self.n_components = self.n_atoms = self.n_neighbours = 0
        self.temperatures: list[float] = []
        self.lightest = None

    def __iter__(self):
        for frame in self.frames:
            self.add(frame)
            yield frame

    def add(self, frame: dict) -> None:
        d, vt = frame["target_displacement"], frame["target_velocity"]
        self.sum_d2 += float(np.sum(d**2))
        self.sum_v2 += float(np.sum(vt**2))
        self.n_components += d.size
        n = len(frame["species"])
        masses = units.masses_amu(frame["species"])
        n_dof = degrees_of_freedom(n, frame["pbc"])
        self.temperatures.append(units.temperature_k(units.kinetic_energy_ev(masses, frame["velocities"]), n_dof))
        self.n_neighbours += len(neighbor_pairs(frame["positions"], frame["cell"], frame["pbc"], self.cutoff_A)[0])
        self.n_atoms += n
        lightest = float(masses.min())
        self.lightest = lightest if self.lightest is None else min(self.lightest, lightest)

    def statistics(self) -> dict:
        temperature = float(np.mean(self.temperatures))
        return {"displacement_rms_A": float(np.sqrt(self.sum_d2 / self.n_components)),
                "velocity_rms_A_per_fs": float(np.sqrt(self.sum_v2 / self.n_components)),
                "avg_num_neighbors": float(self.n_neighbours / self.n_atoms),
                "temperature_K": temperature,
                "mb_vrms_lightest_A_per_fs": units.mb_vrms_A_per_fs(self.lightest, temperature)}


def _provenance(paths, command) -> dict:
    return {"sources": [{"file": str(Path(p).resolve()), "sha256": _sha256(p)} for p in paths],
            "command": command if command is not None else " ".join(sys.argv),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "package": f"trajcast-dist {__version__}"}


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
