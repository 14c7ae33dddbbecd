"""What a reference system must tell the MD driver: units, time step, thermostats and how to build it.

One `MDSystem` per system of the paper (Methods "Reference Data Sets"); `water.py`, `quartz.py` and
`paracetamol.py` fill it in.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from trajcast_dist.errors import UserError

__all__ = ["MDSystem", "Stage", "get_system", "SYSTEM_NAMES"]

SYSTEM_NAMES = ("water", "quartz", "paracetamol")


@dataclass(frozen=True)
class Stage:
    """One equilibration stage: commands that set up its fixes, its length, and the fixes to remove after."""

    commands: list[str]
    steps: int
    fixes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MDSystem:
    name: str
    unit_style: str
    timestep_fs: float
    csvr_tau_fs: float
    start_window_K: float | None  # production starts within ±window of the target temperature (paper)
    start_separation_fs: float  # and at least this far apart in time
    # build(session, workdir, repeat, seed) -> atomic numbers ordered by atom ID; reads the structure and
    # issues every force-field command.
    build: Callable
    # equilibration(temperature_K, total_fs, seed) -> [Stage]; starts are sampled from the last stage.
    equilibration: Callable
    # load(session, atoms, workdir) -> same as build, but from a given configuration (for `rerun`).
    load: Callable
    # Paracetamol (paper): starts chosen by total energy within this relative distance of its equilibration
    # mean instead of by temperature (start_window_K is then unused).
    start_energy_rel_tol: float | None = None
    candidate_every_fs: float = 10.0  # start candidates are sampled this often in the last equilibration stage
    periodic: bool = True  # False: an isolated molecule; frames are written with pbc False and no cell
    # Issued after `fix csvr ...` in nvt-csvr production (e.g. its temperature compute, momentum removal),
    # and the fixes among them to remove afterwards.
    csvr_commands: tuple[str, ...] = ()
    csvr_fixes: tuple[str, ...] = ()


def get_system(name: str) -> MDSystem:
    """`WATER` of `data/water.py`, and so on (imported on demand: each module loads its force field)."""
    if name in SYSTEM_NAMES:
        return getattr(importlib.import_module(f"trajcast_dist.data.{name}"), name.upper())
    raise UserError(f"unknown system {name!r}; choose one of: {', '.join(SYSTEM_NAMES)}")
