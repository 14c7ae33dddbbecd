"""Errors of a model on a split of a pair store (validation during training, `trajcast-dist evaluate`), and the
layout of SI Table S1 for printing them."""

from __future__ import annotations

import torch

from trajcast_dist.training.batch import BatchMaker
from trajcast_dist.training.metrics import Metrics
from trajcast_dist.training.sampler import rank_frames

__all__ = ["evaluate", "table_s1"]


def evaluate(model, store, split: str, dist, batch_size: int, rms: tuple[float, float],
             weights: tuple[float, float] = (0.5, 0.5), max_frames: int | None = None, forward=None) -> Metrics:
    """All-reduced metrics of `model` over every frame of `split` (each rank evaluates its own blocks).

    `forward` is the callable to run (default: the model itself; the loop passes its engine)."""
    param = next(model.parameters())
    maker = BatchMaker(model.species_index, model.cutoff_A, param.dtype, param.device)
    metrics = Metrics(model.species, weights, rms, device=param.device)
    forward = forward or model
    was_training = model.training
    model.eval()
    frames = []
    with torch.no_grad():
        for frame in rank_frames(store, split, dist.rank, dist.world_size, max_frames):
            frames.append(frame)
            if len(frames) == batch_size:
                _add(metrics, forward, maker(frames), model)
                frames = []
        if frames:
            _add(metrics, forward, maker(frames), model)
    model.train(was_training)
    return metrics.reduce(dist)


def table_s1(summary: dict, system: str, dt_fs: float, species: list[int], n_frames: int) -> str:
    """The test errors laid out like SI Table S1 (Abs in 1e-5 Å and 1e-5 Å/fs; Rel = MAE / mean |target|),
    one row for the system and one per element, with MAE / training RMS added on the right."""
    from ase.data import chemical_symbols

    head = (f"{'System':<14}{'Δt [fs]':>9}  {'Displacement':^22}  {'Velocity':^24}  {'MAE / train RMS':^18}\n"
            f"{'':<14}{'':>9}  {'Abs [1e-5 Å]':>12}{'Rel [%]':>10}  {'Abs [1e-5 Å/fs]':>15}{'Rel [%]':>9}"
            f"  {'Δr [%]':>8}{'v [%]':>9}")
    rows = [head, "-" * len(head.splitlines()[1])]
    for label, suffix in [(system, "")] + [(f"  {chemical_symbols[z]}", f"_{chemical_symbols[z]}") for z in species]:
        s = {k: summary[f"{k}{suffix}"] for k in ("mae_d", "mae_v", "rel_mean_d", "rel_mean_v", "rel_rms_d",
                                                    "rel_rms_v")}
        rows.append(f"{label:<14}{dt_fs:>9.1f}  {s['mae_d'] * 1e5:>12.2f}{s['rel_mean_d'] * 100:>10.2f}  "
                    f"{s['mae_v'] * 1e5:>15.2f}{s['rel_mean_v'] * 100:>9.2f}  {s['rel_rms_d'] * 100:>8.2f}"
                    f"{s['rel_rms_v'] * 100:>9.2f}")
    rows.append(f"{n_frames} frames, {summary['n_atoms']} atoms; Rel = MAE / mean |target component| of this set "
                "(as SI Table S1); loss (eq. 8) = " + f"{summary['loss']:.4e}")
    return "\n".join(rows)


def _add(metrics: Metrics, forward, batch, model) -> None:
    pred_d, pred_v = forward(batch.graph)
    metrics.add(pred_d, pred_v, batch.target_displacement, batch.target_velocity, batch.graph.species,
                model.readout.scales(batch.graph.species))
