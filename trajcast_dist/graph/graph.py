"""The graph the model consumes: one small typed container, built once per step.

Edges are all pairs (j → i) with |r_ij| < r_c, r_ij = r_j − r_i + S·cell over periodic images (vesin).
Rows [0, n_owned) are the atoms this process owns; rows after are ghosts (distributed driver only),
and only edges whose receiver is owned are kept.
"""

from dataclasses import dataclass

import numpy as np
import torch
from vesin import NeighborList

__all__ = ["Graph", "build_graph", "collate", "neighbor_pairs"]


@dataclass
class Graph:
    positions: torch.Tensor  # (N, 3) Å
    velocities: torch.Tensor  # (N, 3) Å/fs
    species: torch.Tensor  # (N,) index into the model's species list
    masses: torch.Tensor  # (N,) amu
    edge_index: torch.Tensor  # (2, E): row 0 senders j, row 1 receivers i
    edge_vectors: torch.Tensor  # (E, 3) r_j − r_i (+ periodic shift), Å
    batch: torch.Tensor  # (N,) which configuration each atom belongs to
    n_graphs: int
    n_owned: int

    @property
    def n_nodes(self) -> int:
        return self.positions.shape[0]


def neighbor_pairs(positions: np.ndarray, cell: np.ndarray, pbc, cutoff: float):
    """Full neighbour list (i, j, shifts) with r_ij = r_j − r_i + shifts @ cell, |r_ij| < cutoff.

    vesin handles triclinic cells and cells smaller than 2·cutoff (several images of one atom).
    """
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    box = np.asarray(cell, dtype=np.float64) if pbc.any() else np.zeros((3, 3))
    i, j, shifts = NeighborList(cutoff=float(cutoff), full_list=True).compute(
        points=np.ascontiguousarray(positions, dtype=np.float64), box=box,
        periodic=[bool(p) for p in pbc], quantities="ijS")
    return i.astype(np.int64), j.astype(np.int64), shifts.astype(np.float64)


def build_graph(positions, velocities, species, masses, cell, pbc, cutoff: float, n_owned: int | None = None,
                dtype=torch.float64, device="cpu") -> Graph:
    """Build the graph of one configuration from numpy arrays (positions Å, velocities Å/fs, masses amu)."""
    positions = np.asarray(positions, dtype=np.float64)
    n = positions.shape[0]
    n_owned = n if n_owned is None else int(n_owned)
    i, j, shifts = neighbor_pairs(positions, cell, pbc, cutoff)
    if n_owned < n:
        keep = i < n_owned
        i, j, shifts = i[keep], j[keep], shifts[keep]
    vectors = positions[j] - positions[i] + shifts @ np.asarray(cell, dtype=np.float64).reshape(3, 3)
    as_float = dict(dtype=dtype, device=device)
    return Graph(
        positions=torch.as_tensor(positions, **as_float),
        velocities=torch.as_tensor(np.asarray(velocities), **as_float),
        species=torch.as_tensor(np.asarray(species), dtype=torch.long, device=device),
        masses=torch.as_tensor(np.asarray(masses), **as_float),
        edge_index=torch.as_tensor(np.stack([j, i]), dtype=torch.long, device=device),
        edge_vectors=torch.as_tensor(vectors, **as_float),
        batch=torch.zeros(n, dtype=torch.long, device=device),
        n_graphs=1,
        n_owned=n_owned,
    )


def collate(graphs: list[Graph]) -> Graph:
    """Join single-configuration graphs (all atoms owned) into one batch for training."""
    offsets = np.cumsum([0] + [g.n_nodes for g in graphs[:-1]])
    return Graph(
        positions=torch.cat([g.positions for g in graphs]),
        velocities=torch.cat([g.velocities for g in graphs]),
        species=torch.cat([g.species for g in graphs]),
        masses=torch.cat([g.masses for g in graphs]),
        edge_index=torch.cat([g.edge_index + int(o) for g, o in zip(graphs, offsets)], dim=1),
        edge_vectors=torch.cat([g.edge_vectors for g in graphs]),
        batch=torch.cat([torch.full((g.n_nodes,), b, dtype=torch.long, device=g.positions.device)
                         for b, g in enumerate(graphs)]),
        n_graphs=len(graphs),
        n_owned=sum(g.n_nodes for g in graphs),
    )
