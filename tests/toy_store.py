"""A small synthetic pair store for tests and benchmarks of the training loop (no MD needed).

Water boxes with thermal velocities and a learnable target — straight-line motion over Δt:
Δr = v·Δt, v(t+Δt) = v — written with the data module's `PairStoreWriter`, with the same attributes and
statistics as a store from `trajcast-dist data pairs`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trajcast_dist import units
from trajcast_dist.data.store import PairStoreWriter
from trajcast_dist.graph.graph import neighbor_pairs
from trajcast_dist.structures import water_box

__all__ = ["write_toy_store"]


def write_toy_store(path, frames: dict | None = None, molecules_per_side: int = 2, dt_fs: float = 5.0,
                    cutoff_A: float = 4.0, shard_frames: int = 4, temperature_K: float = 300.0, seed: int = 0,
                    corrupt: tuple[str, int] | None = None, damping: float = 0.0, chain: int = 1) -> Path:
    """Write a store with `frames` = {split: count} (default train 16, val 4, test 4); returns its path.

    `corrupt=(split, index)` puts NaN velocities into that frame (to test fault handling). `damping` γ makes the
    target depart from free flight: v′ = (1 − γ) v, Δr = (1 − γ/2) v Δt (for a baseline to subtract). `chain` > 1
    makes runs of that many consecutive pairs, each starting where the one before ended (a trajectory)."""
    frames = frames or {"train": 16, "val": 4, "test": 4}
    rng = np.random.default_rng(seed)
    writer = PairStoreWriter(path, shard_frames)
    sums = {"d2": 0.0, "v2": 0.0, "n": 0, "pairs": 0, "atoms": 0}
    for split, count in frames.items():
        n_atoms = 3 * molecules_per_side**3
        out = writer.create_split(split, count, n_atoms)
        for k in range(count):
            atoms = water_box(molecules_per_side, seed=int(rng.integers(1 << 30)))
            positions = atoms.positions + rng.normal(0.0, 0.05, atoms.positions.shape)
            masses = units.masses_amu(atoms.numbers)
            sigma = np.sqrt(units.KB_EV_PER_K * temperature_K / (masses * units.AMU_A2_PER_FS2_IN_EV))
            velocities = rng.normal(size=(n_atoms, 3)) * sigma[:, None]
            velocities -= (masses[:, None] * velocities).sum(0) / masses.sum()
            if k % chain:
                positions, velocities = frame["positions"] + frame["target_displacement"], frame["target_velocity"]
            if corrupt == (split, k):
                velocities[:] = np.nan
            frame = {"positions": positions, "velocities": velocities, "species": atoms.numbers,
                     "cell": atoms.cell.array, "pbc": np.array([True] * 3),
                     "target_displacement": (1 - damping / 2) * velocities * dt_fs,
                     "target_velocity": (1 - damping) * velocities}
            out.append(frame)
            if split == "train" and corrupt != (split, k):
                sums["d2"] += float(np.sum(frame["target_displacement"] ** 2))
                sums["v2"] += float(np.sum(frame["target_velocity"] ** 2))
                sums["n"] += velocities.size
                sums["pairs"] += len(neighbor_pairs(positions, atoms.cell.array, [True] * 3, cutoff_A)[0])
                sums["atoms"] += n_atoms
        out.flush()
    statistics = {"displacement_rms_A": np.sqrt(sums["d2"] / sums["n"]),
                  "velocity_rms_A_per_fs": np.sqrt(sums["v2"] / sums["n"]),
                  "avg_num_neighbors": sums["pairs"] / sums["atoms"], "temperature_K": temperature_K,
                  "mb_vrms_lightest_A_per_fs": units.mb_vrms_A_per_fs(1.008, temperature_K)}
    writer.set_attrs({"species": [1, 8], "dt_fs": float(dt_fs), "cutoff_A": float(cutoff_A),
                      "units": {"length": "Å", "time": "fs", "velocity": "Å/fs"},
                      "statistics": {k: float(v) for k, v in statistics.items()},
                      "provenance": {"generator": "tests/toy_store.py", "seed": seed}})
    return Path(path)
