"""Moving whole-system arrays between rank 0 and the owners, in chunks: the input is sent to its owners a chunk
at a time, and output frames are collected in global-id order a chunk at a time, so besides what rank 0 reads or
writes, no rank ever holds more than one chunk of other ranks' atoms."""

from collections.abc import Iterator

import numpy as np
from mpi4py import MPI

from trajcast_dist.dynamics.state import SystemState, wrap_positions
from trajcast_dist.errors import UserError
from trajcast_dist.parallel.atoms import ATOM_COLUMNS, LocalAtoms
from trajcast_dist.parallel.domain import Domain

__all__ = ["CHUNK_ATOMS", "scatter_state", "gather_blocks", "gather_state"]

CHUNK_ATOMS = 65536


def scatter_state(world, domain: Domain, state: SystemState | None, chunk: int = CHUNK_ATOMS) -> LocalAtoms:
    """Rank 0 holds `state` (None elsewhere); every rank returns the atoms it owns, positions wrapped."""
    n_total = world.bcast(state.n_atoms if world.rank == 0 else None, root=0)
    if world.rank == 0 and not np.array_equal(state.ids, np.arange(n_total)):
        raise UserError("atom ids of the input are not 0..N−1; renumber them (restart files always are)")
    received = []
    for start in range(0, n_total, chunk):
        send, counts = None, None
        if world.rank == 0:
            rows = _chunk_rows(state, domain, start, min(start + chunk, n_total))
            owner = domain.owner(rows[:, :3])
            order = np.argsort(owner, kind="stable")
            send = np.ascontiguousarray(rows[order])
            counts = np.bincount(owner, minlength=world.size).astype(np.int64)
        mine = np.zeros(1, dtype=np.int64)
        world.Scatter(counts, mine, root=0)
        rows_in = np.empty((int(mine[0]), ATOM_COLUMNS), dtype=np.float64)
        if world.rank == 0:
            displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
            world.Scatterv([send, counts * ATOM_COLUMNS, displs * ATOM_COLUMNS, MPI.DOUBLE], rows_in, root=0)
        else:
            world.Scatterv(None, rows_in, root=0)
        received.append(rows_in)
    return LocalAtoms.unpack(np.concatenate(received) if received else np.zeros((0, ATOM_COLUMNS)))


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


def gather_state(world, atoms: LocalAtoms, header: dict, chunk: int = CHUNK_ATOMS) -> SystemState | None:
    """The whole state on rank 0 (assembled chunk by chunk), None elsewhere."""
    blocks = [b for b in gather_blocks(world, atoms, header["n_atoms"], chunk)]
    if world.rank != 0:
        return None
    rows = LocalAtoms.unpack(np.concatenate(blocks) if blocks else np.zeros((0, ATOM_COLUMNS)))
    return SystemState(positions=rows.positions, velocities=rows.velocities, numbers=rows.numbers,
                       cell=header["cell"], pbc=header["pbc"], image=rows.image, ids=rows.ids,
                       step=header["step"], time_fs=header["time_fs"])


def _chunk_rows(state: SystemState, domain: Domain, start: int, stop: int) -> np.ndarray:
    positions, image = wrap_positions(state.positions[start:stop], state.image[start:stop], state.cell, state.pbc)
    part = LocalAtoms(positions=positions, velocities=state.velocities[start:stop], image=image,
                      numbers=state.numbers[start:stop], ids=state.ids[start:stop])
    return part.pack()
