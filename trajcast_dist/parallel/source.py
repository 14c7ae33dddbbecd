"""The input of a distributed run as rank 0 streams it to the owners: a header (whole-system scalars, known
before any atom is read, so the domain can be built) and blocks of atoms, read as they are scattered.

- extxyz with velocities: read a chunk at a time (`io.extxyz_reader`); the net momentum that serial runs remove
  (`initial_state`) is summed over the blocks as they pass and subtracted after the scatter. Chunked sums round
  differently from numpy's one-shot sum, so the initial velocities match a serial run to ~1e-16 relative, not
  bit for bit (the same for every P, since rank 0 sums in id order).
- extxyz without velocities (periodic): Maxwell–Boltzmann exactly as serial runs draw it, which needs every
  atom's mass at once (the scaling to T and the zero net momentum are sums over the whole array, and numpy's
  pairwise sums cannot be reproduced chunk by chunk): rank 0 reads the atomic numbers first (8 B/atom) and
  holds the (N, 3) velocities (24 B/atom) until they are sent; positions are still streamed.
- other formats, VEC cells, isolated molecules without velocities: ASE reads the whole structure on rank 0
  (`initial_state`, as serial runs), then it is sent a chunk at a time.
- restart files: the metadata at once, the atoms a block at a time (`io.restart.RestartReader`).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from trajcast_dist import units
from trajcast_dist.dynamics.rollout import check_compatible
from trajcast_dist.dynamics.velocities import maxwell_boltzmann
from trajcast_dist.io.blocks import AtomBlock, frame_header, state_blocks
from trajcast_dist.io.extxyz_reader import NotStreamable, is_extxyz, open_extxyz, read_blocks, read_numbers

__all__ = ["InputSource", "open_restart", "open_structure"]


@dataclass
class InputSource:
    header: dict  # n_atoms, cell, pbc, step, time_fs
    blocks: Iterable  # AtomBlocks with global ids; consumed once, by the scatter
    drift: "_Drift | None" = None  # Σ m v and Σ m of the blocks sent, when the net momentum is to be removed

    def velocity_shift(self) -> np.ndarray | None:
        """The net velocity to subtract from every atom after the scatter (None: nothing to remove)."""
        return None if self.drift is None else self.drift.velocity()


def open_structure(path, model, settings, rng: np.random.Generator) -> InputSource:
    """A structure file as serial `initial_state` would prepare it, streamed where the format allows."""
    if is_extxyz(path):
        try:
            return _open_extxyz(path, model, settings, rng)
        except NotStreamable:
            pass  # read below with ASE, like any other format
    return _open_with_ase(path, model, settings, rng)


def open_restart(restart, model, rng: np.random.Generator) -> InputSource:
    """A `RestartReader`: sets the generator state; atoms checked against the model as they are read."""
    rng.bit_generator.state = restart.rng_state
    header = restart.header()
    return InputSource(header, _checked(restart.blocks(), model, header, str(restart.path)))


def _open_extxyz(path, model, settings, rng) -> InputSource:
    frame = open_extxyz(path)
    header, where = frame.header(), str(path)
    check_compatible(model, np.zeros(0, dtype=np.int64), header["pbc"], where)
    if frame.has_velocities:
        drift = _Drift()
        return InputSource(header, drift.tally(_checked(read_blocks(frame), model, header, where)), drift)
    if not header["pbc"].any():
        raise NotStreamable("isolated molecule: Maxwell–Boltzmann needs every position (angular momentum)")
    numbers = read_numbers(frame)
    check_compatible(model, numbers, header["pbc"], where)
    velocities = maxwell_boltzmann(units.masses_amu(numbers), settings.temperature_K, rng, True)
    del numbers
    return InputSource(header, _with_velocities(read_blocks(frame), velocities))


def _open_with_ase(path, model, settings, rng) -> InputSource:
    from trajcast_dist.forecast import initial_state
    from trajcast_dist.io.structure import read_structure

    state = initial_state(read_structure(path), model, settings, rng, where=str(path))
    return InputSource(frame_header(state), state_blocks(state))


def _checked(blocks: Iterable, model, header: dict, where: str) -> Iterator:
    """Blocks after the model check of their elements (the same message as serial `check_compatible`)."""
    for block in blocks:
        check_compatible(model, block.numbers, header["pbc"], where)
        yield block


def _with_velocities(blocks: Iterable, velocities: np.ndarray) -> Iterator[AtomBlock]:
    for block in blocks:
        block.velocities = velocities[block.ids[0]: block.ids[-1] + 1] if len(block) else block.velocities
        yield block


class _Drift:
    """Σ m v and Σ m over the blocks that pass through `tally` (rank 0, id order)."""

    def __init__(self):
        self.momentum, self.mass = np.zeros(3), 0.0

    def tally(self, blocks: Iterable) -> Iterator:
        for block in blocks:
            masses = units.masses_amu(block.numbers)
            self.momentum = self.momentum + (masses[:, None] * block.velocities).sum(0)
            self.mass += masses.sum()
            yield block

    def velocity(self) -> np.ndarray:
        return self.momentum / self.mass
