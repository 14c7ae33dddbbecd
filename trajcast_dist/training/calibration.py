"""Kinetic calibration: a model trained by mean-squared error predicts the conditional mean of the next velocity,
which is shrunk toward zero wherever it is unsure (and more so after input-noise training, which teaches it to
damp what may be noise). The shortfall, ⟨|v̂′|²⟩ < ⟨|v′|²⟩ per element, is a friction the MD does not have: each
step removes a fixed fraction of the kinetic energy, so under a thermostat the liquid runs cold and diffuses slowly
(issue #13: −0.5 % per step for O, T_O 284 K and D_O half of MD's under Langevin).

`kinetic_ratios` measures ⟨|v̂′|²⟩/⟨|v′|²⟩ per element on held-out pairs; the gain √(1/ratio) per element, stored
in the model file (`trajcast-dist model calibrate`), restores the MD's second moment before the conservation step.
"""

from __future__ import annotations

import numpy as np
import torch

from trajcast_dist.progress import progress_bar
from trajcast_dist.training.batch import BatchMaker
from trajcast_dist.training.sampler import rank_frames

__all__ = ["KineticRatio", "kinetic_ratios"]


class KineticRatio:
    """⟨|v̂′|²⟩/⟨|v′|²⟩ of one element over the evaluated pairs, with the standard error over frames (nearby
    frames are correlated: it is a lower bound)."""

    def __init__(self, predicted: np.ndarray, true: np.ndarray):
        self.ratio = float(predicted.sum() / true.sum())
        present = true > 0
        per_batch = predicted[present] / true[present]
        self.error = float(per_batch.std(ddof=1) / np.sqrt(len(per_batch))) if len(per_batch) > 1 else float("nan")

    @property
    def gain(self) -> float:
        return float(self.ratio ** -0.5)


@torch.no_grad()
def kinetic_ratios(model, store, split: str, batch_size: int = 2, max_frames: int | None = None,
                   progress: bool = False) -> dict:
    """{atomic number: KineticRatio} of `model` as it is (its gain included) on `split` of a pair store."""
    param = next(model.parameters())
    maker = BatchMaker(model.species_index, model.cutoff_A, param.dtype, param.device)
    n_species = len(model.species)
    sums: list[np.ndarray] = []  # per frame: (2, species) Σ|v̂′|², Σ|v′|²
    frames = []

    def add(batch) -> None:
        graph = batch.graph
        _, velocity = model(graph)
        pair = torch.stack([velocity.pow(2).sum(-1), batch.target_velocity.pow(2).sum(-1)]).to(torch.float64)
        grouped = torch.zeros(2, graph.n_graphs * n_species, dtype=torch.float64, device=param.device)
        grouped.index_add_(1, graph.batch * n_species + graph.species, pair)
        sums.extend(grouped.reshape(2, graph.n_graphs, n_species).transpose(0, 1).cpu().numpy())

    total = min(store.n_frames(split), max_frames or store.n_frames(split))
    for frame in progress_bar(rank_frames(store, split, 0, 1, max_frames), total=total, desc="calibrate",
                              unit="pair", enabled=progress):
        frames.append(frame)
        if len(frames) == batch_size:
            add(maker(frames))
            frames = []
    if frames:
        add(maker(frames))
    table = np.stack(sums)
    return {z: KineticRatio(table[:, 0, k], table[:, 1, k]) for k, z in enumerate(model.species)
            if table[:, 1, k].sum() > 0}
