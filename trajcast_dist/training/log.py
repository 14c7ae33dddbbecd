"""Rank 0's record of a run: one CSV row per epoch (`train_log.csv`) and a PNG of the learning curves."""

from __future__ import annotations

import csv
from pathlib import Path

from trajcast_dist.io.atomic import atomic_path

__all__ = ["COLUMNS", "write_log", "plot_curves"]

COLUMNS = ["epoch", "step", "lr", "train_loss", "val_loss", "val_mae_d_A", "val_mae_v_A_per_fs",
           "val_rel_rms_d", "val_rel_rms_v", "train_mae_d_A", "train_mae_v_A_per_fs", "epoch_s", "samples_per_s"]


def write_log(path, history: list[dict]) -> None:
    """Rewrite the whole CSV (atomic): after a resume the file holds exactly the checkpoint's history."""
    extra = sorted({k for row in history for k in row} - set(COLUMNS))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS + extra, restval="")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in row.items()})


def plot_curves(path, history: list[dict]) -> None:
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_mae) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.semilogy(epochs, [row["train_loss"] for row in history], label="train")
    ax_loss.semilogy(epochs, [row["val_loss"] for row in history], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss (eq. 8, RMS-normalised)")
    ax_loss.legend()
    ax_mae.semilogy(epochs, [row["val_rel_rms_d"] for row in history], label="Δr")
    ax_mae.semilogy(epochs, [row["val_rel_rms_v"] for row in history], label="v")
    ax_mae.set(xlabel="epoch", ylabel="validation MAE / target RMS")
    ax_mae.legend()
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
