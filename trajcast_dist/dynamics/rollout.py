"""The driver `run_forecast` runs (paper Fig. 1A, the autoregressive loop) and its halo for one process holding
every atom, whose output is a single block. A rank of a distributed run (`parallel.driver.GhostHalo`) is the
P-block case of the same driver."""

import time
from typing import Iterable

import numpy as np
import torch
from ase.data import chemical_symbols

from trajcast_dist import units
from trajcast_dist.dynamics.state import SystemState, wrap_positions
from trajcast_dist.dynamics.step import StepSettings, propagate
from trajcast_dist.dynamics.thermostat import degrees_of_freedom
from trajcast_dist.errors import UserError
from trajcast_dist.graph import build_graph
from trajcast_dist.graph.graph import neighbor_pairs
from trajcast_dist.reduce import LocalReducer

__all__ = ["Driver", "LocalHalo", "check_compatible", "check_overlaps", "kinetic_temperature", "MIN_DISTANCE_A"]

# Closer than any two atoms of a physical structure (the H–H bond is 0.74 Å): a duplicated atom or a broken
# file, which the model would turn into NaN at the first step.
MIN_DISTANCE_A = 0.5


def check_compatible(model, numbers: np.ndarray, pbc: np.ndarray, where: str = "structure") -> np.ndarray:
    """Species index of every atom; errors for unknown elements or a periodic/non-periodic mismatch."""
    pbc = np.asarray(pbc, dtype=bool)
    if model.config.periodic and not pbc.all():
        raise UserError(f"{where} is not periodic in all directions (pbc={pbc.tolist()}) but the model was "
                        "trained on periodic systems; give the structure a cell and pbc=True")
    if not model.config.periodic and pbc.any():
        raise UserError(f"{where} is periodic but the model was trained on an isolated molecule; set pbc=False")
    return model.species_index(numbers, where)


def check_overlaps(positions, numbers, ids, cell, pbc, where: str = "structure", n_owned: int | None = None) -> None:
    """Refuse atoms closer than MIN_DISTANCE_A, naming the closest such pair by global id. With `n_owned`, rows
    after it are ghosts (distributed runs): only pairs with an owned atom are looked at."""
    i, j, shifts = neighbor_pairs(positions, cell, pbc, MIN_DISTANCE_A)
    keep = i < (len(positions) if n_owned is None else n_owned)
    i, j, shifts = i[keep], j[keep], shifts[keep]
    if not len(i):
        return
    distances = np.linalg.norm(positions[j] - positions[i] + shifts @ np.asarray(cell).reshape(3, 3), axis=1)
    k = int(np.argmin(distances))
    a, b = sorted((int(ids[i[k]]), int(ids[j[k]])))
    first, second = (chemical_symbols[int(numbers[x])] for x in (i[k], j[k]))
    raise UserError(f"{where}: atoms {a} and {b} ({first}, {second}; 0-based) are {distances[k]:.3g} Å apart, "
                    f"closer than {MIN_DISTANCE_A} Å: overlapping atoms; remove the duplicate or fix the positions")


def kinetic_temperature(reducer, numbers, velocities, n_atoms: int, periodic: bool) -> float:
    """Temperature (K) of the whole system from the atoms this process holds (`reducer` sums over processes)."""
    kinetic = units.kinetic_energy_ev(units.masses_amu(numbers), velocities)
    total = float(reducer.sum(torch.tensor([kinetic], dtype=torch.float64)))
    return units.temperature_k(total, degrees_of_freedom(n_atoms, periodic))


class LocalHalo:
    """What one process holding every atom sees around it: periodic images come from the cell (the graph's own
    image search), no atom changes owner, sums are local. `parallel.driver.GhostHalo` is the case of one rank of
    P; `Driver` runs the same step with either."""

    reducer = LocalReducer()
    sync = None  # no ghost features to refresh between layers

    def __init__(self, pbc):
        self.pbc = np.asarray(pbc, dtype=bool)

    def borders(self, atoms) -> tuple:
        """(positions, velocities, atomic numbers, pbc, owned rows) of the graph's nodes: the atoms themselves."""
        return atoms.positions, atoms.velocities, atoms.numbers, self.pbc, None

    def exchange(self, atoms):
        return atoms

    def gather(self, atoms, n_atoms: int) -> list:
        return [atoms]

    def whole(self, atoms, header: dict) -> SystemState:
        atoms.step, atoms.time_fs = header["step"], header["time_fs"]
        return atoms

    def stats(self, atoms) -> dict:
        return {"atoms": len(atoms.ids)}


class Driver:
    """Advances the atoms this process holds one model step at a time; what `run_forecast` runs. `halo` shows it
    the rest of the system and sums over processes: `LocalHalo` (one process, one output block) or
    `parallel.driver.GhostHalo` (one rank of P). Collective calls (step, snapshot, temperature) are made by every
    process of a distributed run at the same point."""

    def __init__(self, model, atoms, header: dict, halo, settings: StepSettings, rng: np.random.Generator,
                 dtype=torch.float64, device="cpu"):
        self.model, self.atoms, self.halo, self.settings, self.rng = model, atoms, halo, settings, rng
        self.header = dict(header)  # whole-system scalars: n_atoms, cell, pbc, step, time_fs
        self.dtype, self.device = dtype, device
        self.is_main = halo.reducer.is_main  # the process that writes files and logs
        self.timers = dict.fromkeys(("borders", "graph", "model", "exchange"), 0.0)
        self._stats = {}

    @property
    def step_count(self) -> int:
        return self.header["step"]

    def step(self) -> float:
        """One Δt for the whole system; the temperature after the thermostat (K)."""
        clock = time.perf_counter()
        positions, velocities, numbers, pbc, n_owned = self.halo.borders(self.atoms)
        tick = self._lap("borders", clock)
        graph = build_graph(positions, velocities, self.model.species_index(numbers), units.masses_amu(numbers),
                            self.header["cell"], pbc, self.model.cutoff_A, n_owned=n_owned, dtype=self.dtype,
                            device=self.device)
        tick = self._lap("graph", tick)
        displacement, velocities, temperature = propagate(self.model, graph, self.settings, self.halo.reducer,
                                                          self.rng, self.step_count + 1, self.atoms.ids,
                                                          sync=self.halo.sync)
        tick = self._lap("model", tick)
        atoms = self.atoms
        atoms.positions, atoms.image = wrap_positions(atoms.positions + displacement, atoms.image,
                                                      self.header["cell"], self.header["pbc"])
        atoms.velocities = velocities
        self.atoms = self.halo.exchange(atoms)
        self._lap("exchange", tick)
        self.header["step"] += 1
        self.header["time_fs"] += self.model.dt_fs
        return temperature

    def snapshot(self) -> tuple[dict, Iterable | None]:
        """(frame header, the atoms in id order as `io.blocks.AtomBlock`s on the main process, None elsewhere);
        every process must exhaust the blocks or none may start them. Also refreshes `stats`."""
        self._stats = self.halo.stats(self.atoms)
        return dict(self.header), self.halo.gather(self.atoms, self.header["n_atoms"])

    def temperature(self) -> float:
        """Kinetic temperature of the whole system (K)."""
        return kinetic_temperature(self.halo.reducer, self.atoms.numbers, self.atoms.velocities,
                                   self.header["n_atoms"], bool(self.header["pbc"].any()))

    def stats(self) -> dict:
        """Extra `key=value` fields of the log line, as of the last snapshot."""
        return self._stats

    def state(self) -> SystemState | None:
        """The whole current state where this process holds it (one process), else None."""
        return self.halo.whole(self.atoms, self.header)

    def _lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timers[name] += now - since
        return now
