"""The driver protocol `run_forecast` runs, and its serial case: one process holds every atom (paper Fig. 1A,
autoregressive loop), output as a single block. The distributed driver (`parallel.driver`) is the P-block case."""

from typing import Iterable, Protocol

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
from trajcast_dist.io.blocks import frame_header
from trajcast_dist.reduce import LocalReducer

__all__ = ["Driver", "SerialDriver", "check_compatible", "check_overlaps", "kinetic_temperature", "MIN_DISTANCE_A"]

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


class Driver(Protocol):
    """What `run_forecast` needs of a driver. Collective calls (step, snapshot, temperature) are made by every
    process of a distributed run at the same point."""

    model: object
    rng: np.random.Generator
    is_main: bool  # the process that writes files and logs

    @property
    def step_count(self) -> int: ...

    def step(self) -> float:
        """One Δt for the whole system; the temperature after the thermostat (K)."""

    def snapshot(self) -> tuple[dict, Iterable | None]:
        """(frame header, the atoms in id order as `io.blocks.AtomBlock`s on the main process, None elsewhere)."""

    def temperature(self) -> float:
        """Kinetic temperature of the whole system (K)."""

    def stats(self) -> dict:
        """Extra `key=value` fields of the log line."""

    def result(self) -> SystemState | None:
        """The final state where one process holds it, else None."""


class SerialDriver:
    """Advances a `SystemState` one model step at a time on one process (a `Driver`)."""

    reducer = LocalReducer()

    def __init__(self, model, state: SystemState, settings: StepSettings, rng: np.random.Generator,
                 dtype=torch.float64, device="cpu"):
        self.model, self.state, self.settings, self.rng = model, state, settings, rng
        self.dtype, self.device = dtype, device
        self.species = check_compatible(model, state.numbers, state.pbc)
        self.masses = units.masses_amu(state.numbers)

    is_main = True

    @property
    def step_count(self) -> int:
        return self.state.step

    def step(self) -> float:
        """One Δt; returns the temperature after the thermostat."""
        s = self.state
        graph = build_graph(s.positions, s.velocities, self.species, self.masses, s.cell, s.pbc,
                            self.model.cutoff_A, dtype=self.dtype, device=self.device)
        displacement, velocities, temperature = propagate(self.model, graph, self.settings, self.reducer,
                                                          self.rng, s.step + 1, s.ids)
        s.positions, s.image = wrap_positions(s.positions + displacement, s.image, s.cell, s.pbc)
        s.velocities = velocities
        s.step += 1
        s.time_fs += self.model.dt_fs
        return temperature

    def snapshot(self):
        return frame_header(self.state), [self.state]

    def temperature(self) -> float:
        s = self.state
        return kinetic_temperature(self.reducer, s.numbers, s.velocities, s.n_atoms, s.periodic)

    def stats(self) -> dict:
        return {"atoms": self.state.n_atoms}

    def result(self) -> SystemState:
        return self.state
