"""Frames from the pair store → one batched `Graph` plus targets, on the training device and dtype."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trajcast_dist import units
from trajcast_dist.graph import Graph, build_graph, collate

__all__ = ["Batch", "BatchMaker"]


@dataclass
class Batch:
    graph: Graph
    target_displacement: torch.Tensor  # (N, 3) Å
    target_velocity: torch.Tensor  # (N, 3) Å/fs
    indices: list[int]  # frame numbers in the store split (for error messages)

    @property
    def n_atoms(self) -> int:
        return self.graph.n_nodes


class BatchMaker:
    def __init__(self, species_index, cutoff_A: float, dtype: torch.dtype, device):
        self.species_index, self.cutoff_A, self.dtype, self.device = species_index, cutoff_A, dtype, device

    def __call__(self, frames: list[dict]) -> Batch:
        graphs = [self._graph(f) for f in frames]
        as_float = dict(dtype=self.dtype, device=self.device)
        return Batch(collate(graphs),
                     torch.as_tensor(np.concatenate([f["target_displacement"] for f in frames]), **as_float),
                     torch.as_tensor(np.concatenate([f["target_velocity"] for f in frames]), **as_float),
                     [int(f.get("index", -1)) for f in frames])

    def _graph(self, frame: dict) -> Graph:
        numbers = np.asarray(frame["species"])
        where = f"training frame {frame.get('index', '?')}"
        return build_graph(frame["positions"], frame["velocities"], self.species_index(numbers, where),
                           units.masses_amu(numbers), frame["cell"], frame["pbc"], self.cutoff_A,
                           dtype=self.dtype, device=self.device)
