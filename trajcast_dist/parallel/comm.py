"""Messaging of the spatial decomposition (LAMMPS `CommBrick`): `exchange()` migrates atoms to their new owner,
`borders()` builds the ghost lists in three staged sweeps, `forward_comm()` copies owners' features to ghosts
after every interaction layer. Plus `MPIReducer`, the global sums of conservation and thermostat.

All buffers are contiguous numpy arrays (mpi4py's fast, uppercase calls). Each of the six swaps of `borders()`
sends the atoms within one cutoff of a face to the neighbour across it; atoms received in the x sweep are
forwarded in the y and z sweeps, so edge and corner ghosts arrive with 6 messages instead of 26. The same
swap lists, in the same order, drive `forward_comm()`.
"""

from dataclasses import dataclass

import numpy as np
import torch
from mpi4py import MPI

from trajcast_dist.parallel.atoms import LocalAtoms
from trajcast_dist.parallel.domain import HI, LO, Domain
from trajcast_dist.reduce import Reducer

__all__ = ["Comm", "MPIReducer", "Swap", "Traffic"]


class MPIReducer(Reducer):
    """Allreduce / Bcast over a communicator; tensors travel through host memory (a few numbers per step)."""

    def __init__(self, comm=None):
        self.world = comm or MPI.COMM_WORLD
        self.rank, self.world_size = self.world.rank, self.world.size

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        local = np.ascontiguousarray(x.detach().cpu().numpy())
        total = np.empty_like(local)
        self.world.Allreduce(local, total, op=MPI.SUM)
        return torch.from_numpy(total).to(device=x.device, dtype=x.dtype)

    def broadcast(self, x: torch.Tensor) -> torch.Tensor:
        values = np.ascontiguousarray(x.detach().cpu().numpy()).copy()
        self.world.Bcast(values, root=0)
        return torch.from_numpy(values).to(device=x.device, dtype=x.dtype)

    def any(self, flag: bool) -> bool:
        return bool(self.world.allreduce(bool(flag), op=MPI.LOR))

    def barrier(self) -> None:
        self.world.Barrier()


@dataclass
class Swap:
    """One message of `borders()`: rows `send_index` go to `dest` (shifted by `shift`); `count` rows arrive from
    `source` and are stored at rows [first, first + count)."""
    dim: int
    direction: int
    dest: int | None
    source: int | None
    send_index: np.ndarray
    shift: np.ndarray
    first: int
    count: int


@dataclass
class Traffic:
    """Bytes and messages this rank sent to other ranks, by operation (self-copies are not counted)."""
    bytes: dict
    messages: dict

    @classmethod
    def zero(cls) -> "Traffic":
        keys = ("exchange", "borders", "forward")
        return cls({k: 0 for k in keys}, {k: 0 for k in keys})

    def add(self, kind: str, nbytes: int) -> None:
        self.bytes[kind] += int(nbytes)
        self.messages[kind] += 1


class Comm:
    """Send lists, buffers and mpi4py calls for one rank of a `Domain`."""

    def __init__(self, domain: Domain, comm=None, device: torch.device | str = "cpu", cuda_aware: bool = False):
        self.world = comm or MPI.COMM_WORLD
        self.rank, self.size = self.world.rank, self.world.size
        if domain.size != self.size:
            raise ValueError(f"domain has {domain.size} subdomains but the communicator {self.size} ranks")
        self.domain = domain
        self.device = torch.device(device)
        self.cuda_aware = bool(cuda_aware)
        self.swaps: list[Swap] = []
        self.n_ghost = 0
        self.traffic = Traffic.zero()
        self._staging = {}  # pinned host buffers per (rows, width, dtype) when halos go through host memory

    # --- exchange ---------------------------------------------------------------------------------------------
    def exchange(self, atoms: LocalAtoms) -> LocalAtoms:
        """Send atoms that left this subdomain to their new owner, one dimension at a time (an atom crossing an
        edge or a corner hops through the x, then y, then z neighbour). Steps move atoms less than one cutoff,
        and subdomains are at least one cutoff wide, so only nearest neighbours receive."""
        rows = atoms.pack()
        here = self.domain.coords(self.rank)
        for dim in range(3):
            p = self.domain.grid[dim]
            if p == 1:
                continue
            offset = self.domain.owner_coords(rows[:, :3])[:, dim] - here[dim]
            if self.domain.pbc[dim]:
                offset = (offset + p // 2) % p - p // 2  # −1, 0, +1 across the periodic seam as well
            if np.abs(offset).max(initial=0) > 1:
                raise RuntimeError(f"rank {self.rank}: an atom moved more than one subdomain along dim {dim} "
                                   "in one step (displacement above the cutoff?)")
            to_lo = self._sendrecv(rows[offset == -1], self.domain.neighbor(self.rank, dim, LO),
                                   self.domain.neighbor(self.rank, dim, HI), "exchange", tag=100 + 2 * dim)
            to_hi = self._sendrecv(rows[offset == 1], self.domain.neighbor(self.rank, dim, HI),
                                   self.domain.neighbor(self.rank, dim, LO), "exchange", tag=101 + 2 * dim)
            rows = np.concatenate([rows[offset == 0], to_lo, to_hi])
        return LocalAtoms.unpack(rows)

    # --- borders ----------------------------------------------------------------------------------------------
    def borders(self, atoms: LocalAtoms) -> np.ndarray:
        """Build this step's ghost lists; return owned + ghost rows (x y z vx vy vz Z id), owned first.

        In the sweep along d, the atoms with fractional s_d within r_c/h_d of the lower face go to the lower
        neighbour and those within r_c/h_d of the upper face to the upper one, chosen from the owned atoms and the
        ghosts received in earlier sweeps; crossing the periodic seam adds ∓a_d to their positions.
        """
        rows = atoms.ghost_rows()
        lo, hi = self.domain.bounds(self.rank)
        reach = self.domain.cutoff_fractional
        self.swaps = []
        for dim in range(3):
            candidates = rows
            s = self.domain.fractional(candidates[:, :3])[:, dim]
            received = []
            for direction in (LO, HI):
                dest = self.domain.neighbor(self.rank, dim, direction)
                source = self.domain.neighbor(self.rank, dim, 1 - direction)
                near = s < lo[dim] + reach[dim] if direction == LO else s >= hi[dim] - reach[dim]
                send_index = np.flatnonzero(near) if dest is not None else np.zeros(0, dtype=np.int64)
                shift = self.domain.shift(self.rank, dim, direction)
                outgoing = candidates[send_index]
                outgoing[:, :3] += shift
                incoming = self._sendrecv(outgoing, dest, source, "borders", tag=10 + 2 * dim + direction)
                first = len(candidates) + sum(len(r) for r in received)
                self.swaps.append(Swap(dim, direction, dest, source, send_index, shift, first, len(incoming)))
                received.append(incoming)
            rows = np.concatenate([candidates, *received])
        self.n_ghost = len(rows) - len(atoms)
        return rows

    # --- forward_comm -----------------------------------------------------------------------------------------
    def forward_comm(self, h: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """Overwrite ghost rows of `h` (owned + ghost rows, in `borders()` order) with their owners' values,
        replaying the swaps in order so forwarded ghosts are refreshed before they are sent on."""
        h = h.contiguous()
        if h.device.type == "cpu":
            self._forward_host(h.detach().numpy())
        else:
            self._forward_gpu(h.detach())
        return h

    def sync(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """The model's `sync(h, layer)` hook."""
        return self.forward_comm(h, layer)

    def reset_traffic(self) -> Traffic:
        traffic, self.traffic = self.traffic, Traffic.zero()
        return traffic

    # --- private ----------------------------------------------------------------------------------------------
    def _forward_host(self, values: np.ndarray) -> None:
        for swap in self.swaps:
            recv = values[swap.first: swap.first + swap.count]
            if swap.dest == self.rank:  # periodic self-image (one rank along this dimension)
                recv[...] = values[swap.send_index]
                continue
            send = np.ascontiguousarray(values[swap.send_index])
            self.world.Sendrecv(send, dest=_peer(swap.dest), sendtag=50 + swap.dim * 2 + swap.direction,
                                recvbuf=recv, source=_peer(swap.source), recvtag=50 + swap.dim * 2 + swap.direction)
            if swap.dest is not None:
                self.traffic.add("forward", send.nbytes)

    def _forward_gpu(self, h: torch.Tensor) -> None:
        """Device features: CUDA-aware MPI takes the device buffers directly; otherwise border rows are staged
        through pinned host memory and the received ghosts copied back."""
        for swap in self.swaps:
            recv = h[swap.first: swap.first + swap.count]
            send = h.index_select(0, torch.as_tensor(swap.send_index, device=h.device))
            if swap.dest == self.rank:  # periodic self-image
                recv.copy_(send)
                continue
            tag = 50 + swap.dim * 2 + swap.direction
            if self.cuda_aware:
                torch.cuda.synchronize(h.device)
                self.world.Sendrecv(send, dest=_peer(swap.dest), sendtag=tag, recvbuf=recv,
                                    source=_peer(swap.source), recvtag=tag)
            else:
                send_host = self._pinned("send", send.shape[0], h.shape[1], h.dtype)
                recv_host = self._pinned("recv", swap.count, h.shape[1], h.dtype)
                send_host.copy_(send)
                self.world.Sendrecv(send_host.numpy(), dest=_peer(swap.dest), sendtag=tag,
                                    recvbuf=recv_host.numpy(), source=_peer(swap.source), recvtag=tag)
                recv.copy_(recv_host)
            if swap.dest is not None:
                self.traffic.add("forward", send.numel() * send.element_size())

    def _pinned(self, key: str, rows: int, width: int, dtype) -> torch.Tensor:
        buffer = self._staging.get((key, width, dtype))
        if buffer is None or buffer.shape[0] < rows:
            buffer = torch.empty((max(rows, 1) * 2, width), dtype=dtype, pin_memory=True)
            self._staging[(key, width, dtype)] = buffer
        return buffer[:rows]

    def _sendrecv(self, rows: np.ndarray, dest: int | None, source: int | None, kind: str, tag: int) -> np.ndarray:
        """Send `rows` to dest and return the rows that source sends (sizes first, then the data)."""
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        if dest is None and source is None:
            return rows[:0].copy()
        if dest == self.rank and source == self.rank:
            return rows.copy()
        count = np.zeros(1, dtype=np.int64)
        self.world.Sendrecv(np.array([len(rows)], dtype=np.int64), dest=_peer(dest), sendtag=tag,
                            recvbuf=count, source=_peer(source), recvtag=tag)
        incoming = np.empty((int(count[0]), rows.shape[1]), dtype=np.float64)
        self.world.Sendrecv(rows, dest=_peer(dest), sendtag=tag + 1000, recvbuf=incoming, source=_peer(source),
                            recvtag=tag + 1000)
        if dest is not None:
            self.traffic.add(kind, rows.nbytes + 8)
        return incoming


def _peer(rank: int | None) -> int:
    return MPI.PROC_NULL if rank is None else rank
