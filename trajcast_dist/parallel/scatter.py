"""Moving whole-system arrays between rank 0 and the owners, in chunks: the input is sent to its owners a chunk
at a time as rank 0 reads it, and output frames are collected in global-id order a chunk at a time, so no rank
ever holds more than one chunk of other ranks' atoms (nor, with a streaming reader, the whole input)."""

from collections.abc import Iterable, Iterator

import numpy as np
from mpi4py import MPI

from trajcast_dist.dynamics.state import wrap_positions
from trajcast_dist.errors import UserError
from trajcast_dist.io.blocks import CHUNK_ATOMS
from trajcast_dist.parallel.atoms import ATOM_COLUMNS, LocalAtoms
from trajcast_dist.parallel.domain import Domain

__all__ = ["AgreedError", "CHUNK_ATOMS", "scatter_blocks", "gather_atoms", "gather_blocks"]


class AgreedError(UserError):
    """A user error that every rank raises at the same point (so all can stop without MPI_Abort)."""


def scatter_blocks(world, domain: Domain, blocks: Iterable | None, n_total: int) -> LocalAtoms:
    """Rank 0 iterates `blocks` (None elsewhere: atoms with global ids, in any order) and sends each atom to
    its owner as the block arrives; every rank returns the atoms it owns, positions wrapped into the cell.

    A UserError while rank 0 produces a block (a bad line in the middle of a file) becomes an AgreedError on
    every rank, since the others are waiting for that block."""
    received, seen = [], _IdTally()
    source = iter(blocks) if world.rank == 0 else None
    while True:
        news = _next_counts(world, domain, source, n_total, seen) if world.rank == 0 else (None, None)
        counts = world.bcast(news[1] if world.rank == 0 else None, root=0)  # counts, an error, or None (done)
        if counts is None:
            break
        if isinstance(counts, str):
            raise AgreedError(counts)
        rows_in = np.empty((int(counts[world.rank]), ATOM_COLUMNS), dtype=np.float64)
        if world.rank == 0:
            send = news[0]
            displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
            world.Scatterv([send, counts * ATOM_COLUMNS, displs * ATOM_COLUMNS, MPI.DOUBLE], rows_in, root=0)
        else:
            world.Scatterv(None, rows_in, root=0)
        received.append(rows_in)
    return LocalAtoms.unpack(np.concatenate(received) if received else np.zeros((0, ATOM_COLUMNS)))


class _IdTally:
    """Count, Σid and Σid² of the ids sent so far (exact Python ints): with the range check, a cheap test that
    the input numbers its atoms 0..N−1 once each; the first gathered frame checks it exactly."""

    def __init__(self):
        self.count = self.total = self.squares = 0

    def add(self, ids: np.ndarray, n_total: int) -> None:
        if len(ids) and (ids.min() < 0 or ids.max() >= n_total):
            raise UserError(f"atom ids of the input are not 0..N−1 (found {ids.min()}..{ids.max()} for "
                            f"N={n_total}); renumber them (restart files always are)")
        values = ids.astype(object)
        self.count, self.total, self.squares = (self.count + len(ids), self.total + int(values.sum()),
                                                self.squares + int((values * values).sum()))

    def check(self, n_total: int) -> None:
        if (self.count, self.total, self.squares) != (n_total, n_total * (n_total - 1) // 2,
                                                      (n_total - 1) * n_total * (2 * n_total - 1) // 6):
            raise UserError(f"the input gave {self.count} atoms for N={n_total}, or ids that are not 0..N−1 once "
                            "each; renumber them (restart files always are)")


def _next_counts(world, domain: Domain, source: Iterator, n_total: int, seen: _IdTally):
    """Rank 0: (rows sorted by owner, counts per rank) of the next block; (None, message) on a user error;
    (None, None) after the last block."""
    try:
        block = next(source, None)
        if block is None:
            seen.check(n_total)
            return None, None
        seen.add(np.asarray(block.ids, dtype=np.int64), n_total)
        rows = _block_rows(block, domain)
    except UserError as err:
        return None, str(err)
    owner = domain.owner(rows[:, :3])
    order = np.argsort(owner, kind="stable")
    return np.ascontiguousarray(rows[order]), np.bincount(owner, minlength=world.size).astype(np.int64)


def gather_blocks(world, atoms: LocalAtoms, n_total: int, chunk: int = CHUNK_ATOMS) -> Iterator[np.ndarray | None]:
    """Yield packed rows of ids [start, start + chunk) in id order on rank 0 (None elsewhere), for every chunk.

    Checks that every id arrives exactly once (each atom owned by exactly one rank)."""
    rows = atoms.pack()
    for start in range(0, n_total, chunk):
        stop = min(start + chunk, n_total)
        a, b = np.searchsorted(atoms.ids, [start, stop])
        part = np.ascontiguousarray(rows[a:b])
        counts = world.gather(len(part), root=0)
        if world.rank != 0:
            world.Gatherv(part, None, root=0)
            yield None
            continue
        counts = np.asarray(counts, dtype=np.int64)
        merged = np.empty((int(counts.sum()), ATOM_COLUMNS), dtype=np.float64)
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        world.Gatherv(part, [merged, counts * ATOM_COLUMNS, displs * ATOM_COLUMNS, MPI.DOUBLE], root=0)
        ids = np.rint(merged[:, 10]).astype(np.int64)
        if len(ids) != stop - start or not np.array_equal(np.sort(ids), np.arange(start, stop)):
            raise RuntimeError(f"atoms {start}..{stop - 1}: {len(ids)} rows gathered, ids not each owned once")
        block = np.empty_like(merged)
        block[ids - start] = merged
        yield block


def gather_atoms(world, atoms: LocalAtoms, n_total: int, chunk: int = CHUNK_ATOMS
                 ) -> Iterator[LocalAtoms | None]:
    """`gather_blocks` as atoms (ids start..stop−1 in order) on rank 0, None elsewhere: what output sinks eat."""
    for block in gather_blocks(world, atoms, n_total, chunk):
        yield None if block is None else LocalAtoms.unpack(block)


def _block_rows(block, domain: Domain) -> np.ndarray:
    positions, image = wrap_positions(np.asarray(block.positions, dtype=np.float64),
                                      np.asarray(block.image, dtype=np.int64), domain.cell, domain.pbc)
    part = LocalAtoms(positions=positions, velocities=block.velocities, image=image, numbers=block.numbers,
                      ids=block.ids)
    return part.pack()
