"""Small helpers shared by tests (imported as `from helpers import ...`)."""

import numpy as np
import torch

from trajcast_dist import units
from trajcast_dist.graph import build_graph


def predict(model, positions, velocities, numbers, cell, pbc):
    """(Δr, v) of a configuration as float64 numpy arrays."""
    graph = build_graph(positions, velocities, model.species_index(numbers), units.masses_amu(numbers), cell, pbc,
                        model.cutoff_A)
    with torch.no_grad():
        displacement, velocity = model(graph)
    return displacement.numpy(), velocity.numpy()


def thermal_velocities(numbers, temperature_K, seed=0):
    from trajcast_dist.dynamics.velocities import maxwell_boltzmann

    return maxwell_boltzmann(units.masses_amu(numbers), temperature_K, np.random.default_rng(seed))


class ExtxyzWriter:
    """Whole-frame extxyz output through ASE (the reference the streaming writer is compared with)."""

    def __init__(self, path, append: bool = False):
        self.path = path
        self._handle = open(path, "a" if append else "w")

    def write(self, atoms) -> None:
        import ase.io

        ase.io.write(self._handle, atoms, format="extxyz")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def save_restart(path, state, rng_state: dict, settings: dict) -> None:
    """A restart from a whole state."""
    from trajcast_dist.io.blocks import frame_header, state_blocks
    from trajcast_dist.io.restart import RestartWriter

    writer = RestartWriter(path, frame_header(state), rng_state, settings)
    for block in state_blocks(state):
        writer.add(block)
    writer.finish()


def gather(driver):
    """The whole state of a distributed `Driver` on rank 0 (assembled chunk by chunk), None elsewhere;
    collective. Raises unless every id is owned by exactly one rank."""
    from trajcast_dist.dynamics.state import SystemState
    from trajcast_dist.parallel.atoms import ATOM_COLUMNS, LocalAtoms
    from trajcast_dist.parallel.scatter import gather_blocks

    world, header = driver.halo.comm.world, driver.header
    blocks = list(gather_blocks(world, driver.atoms, header["n_atoms"]))
    if world.rank != 0:
        return None
    rows = LocalAtoms.unpack(np.concatenate(blocks) if blocks else np.zeros((0, ATOM_COLUMNS)))
    return SystemState(positions=rows.positions, velocities=rows.velocities, numbers=rows.numbers,
                       cell=header["cell"], pbc=header["pbc"], image=rows.image, ids=rows.ids,
                       step=header["step"], time_fs=header["time_fs"])
