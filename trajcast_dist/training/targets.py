"""What the network is trained to predict (issue #13): target statistics for the model's output baseline and
per-species scales, and the training pairs' augmentations.

    target_rms(store, species, dt_fs, baseline)     global and per-species RMS of the network's targets
    augment(frames, epoch, seed, settings)          time-reversed pairs and noisy inputs, reproducible
    pushforward(frames, store, predict, ...)        inputs replaced by the model's own k-step forecast

Augmentations act on the frame dicts of the pair store (positions, velocities, target_displacement,
target_velocity) before the graph is built, and draw from a generator seeded by (seed, epoch, frame index), so a
resumed run sees the same pairs and the result does not depend on the number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["target_rms", "Augmentation", "augment", "pushforward"]


def target_rms(store, species: list[int], dt_fs: float, baseline: str, max_frames: int = 256) -> dict:
    """RMS of the targets as the network sees them (Δr − vΔt and v′ − v with the ballistic baseline), over all
    atoms and per species, on up to `max_frames` training frames spread over the split."""
    n = store.n_frames("train")
    sums = np.zeros((len(species), 2))
    counts = np.zeros(len(species))
    for index in np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int)):
        frame = store.frame("train", int(index))
        d, v = _network_targets(frame, dt_fs, baseline)
        rows = np.searchsorted(species, np.asarray(frame["species"]))
        np.add.at(sums, rows, np.stack([(d ** 2).sum(-1), (v ** 2).sum(-1)], axis=1))
        np.add.at(counts, rows, 3)
    per_species = np.sqrt(sums / np.maximum(counts, 1)[:, None])
    total = np.sqrt(sums.sum(0) / counts.sum())
    return {"displacement_rms_A": float(total[0]), "velocity_rms_A_per_fs": float(total[1]),
            "species_displacement_rms_A": per_species[:, 0].tolist(),
            "species_velocity_rms_A_per_fs": per_species[:, 1].tolist()}


def _network_targets(frame: dict, dt_fs: float, baseline: str):
    d, v = np.asarray(frame["target_displacement"]), np.asarray(frame["target_velocity"])
    if baseline == "ballistic":
        v_in = np.asarray(frame["velocities"])
        return d - v_in * dt_fs, v - v_in
    return d, v


@dataclass(frozen=True)
class Augmentation:
    """time_reversal: probability of training on the reversed pair (r + Δr, −v′) → (r, −v), valid for
    time-reversible dynamics. noise_*: σ of Gaussian noise on the input positions / velocities; the target stays
    the true next state, so the model learns to pull a perturbed configuration back (Sanchez-Gonzalez et al.
    2020)."""

    time_reversal: float = 0.0
    noise_displacement_A: float = 0.0
    noise_velocity_A_per_fs: float = 0.0
    noise_displacement_by_Z: tuple[tuple[int, float], ...] = ()  # (atomic number, σ) replacing the global σ

    @classmethod
    def from_training(cls, training: dict) -> Augmentation:
        """From the `training:` settings: TrainConfig's fields, or the dict of them a model file keeps."""
        from ase.data import atomic_numbers

        by_z = tuple((atomic_numbers[el], float(sigma))
                     for el, sigma in (training.get("noise_displacement_by_element") or {}).items())
        return cls(training.get("time_reversal") or 0.0, training.get("noise_displacement_A") or 0.0,
                   training.get("noise_velocity_A_per_fs") or 0.0, by_z)

    @property
    def active(self) -> bool:
        return bool(self.time_reversal or self.noise_displacement_A or self.noise_velocity_A_per_fs
                    or any(sigma for _, sigma in self.noise_displacement_by_Z))

    def displacement_sigma(self, species: np.ndarray):
        """σ of the position noise: the global one, or one per atom where elements have their own."""
        if not self.noise_displacement_by_Z:
            return self.noise_displacement_A
        sigma = np.full(len(species), self.noise_displacement_A)
        for z, value in self.noise_displacement_by_Z:
            sigma[np.asarray(species) == z] = value
        return sigma[:, None]


def augment(frames: list[dict], epoch: int, seed: int, settings: Augmentation) -> list[dict]:
    """The frames as trained on this epoch (unchanged when nothing is switched on)."""
    if not settings.active:
        return frames
    return [_augment_one(frame, epoch, seed, settings) for frame in frames]


def _augment_one(frame: dict, epoch: int, seed: int, settings: Augmentation) -> dict:
    rng = np.random.default_rng([int(seed), int(epoch), int(frame["index"]), 0x7A])
    positions, velocities = np.asarray(frame["positions"]), np.asarray(frame["velocities"])
    displacement, velocity = np.asarray(frame["target_displacement"]), np.asarray(frame["target_velocity"])
    # a pushforward input is the model's forecast, not a state of the dynamics: its reversal is no valid pair
    if rng.random() < settings.time_reversal and not frame.get("pushforward"):
        positions, velocities, displacement, velocity = positions + displacement, -velocity, -displacement, -velocities
    noise_r = rng.normal(0.0, settings.displacement_sigma(frame["species"]), positions.shape)
    noise_v = rng.normal(0.0, settings.noise_velocity_A_per_fs, velocities.shape)
    return {**frame, "positions": positions + noise_r, "velocities": velocities + noise_v,
            "target_displacement": displacement - noise_r, "target_velocity": velocity}


def pushforward(frames: list[dict], store, split: str, predict, probability: float, epoch: int, seed: int,
                steps: int = 1, lattice_tol: float = 1e-6) -> list[dict]:
    """Pushforward training (Brandstetter et al. 2022), `steps` steps unrolled: with `probability`, pair i's input
    becomes the model's forecast from frame i − steps (`predict(frames) -> [(Δr, v′)]` applied `steps` times, no
    gradient), and its target stays the true state after frame i, so the model learns to correct the errors its
    own steps make, the states a rollout visits. Used only where frames i − steps … i follow each other in time
    (the store keeps each trajectory's pairs in order; a trajectory's first pairs are trained as they are)."""
    if not probability:
        return frames
    chosen = [k for k, frame in enumerate(frames) if int(frame["index"]) >= steps
              and np.random.default_rng([int(seed), int(epoch), int(frame["index"]), 0x50]).random() < probability]
    chains = {k: [store.frame(split, int(frames[k]["index"]) - j) for j in range(steps, 0, -1)] + [frames[k]]
              for k in chosen}
    shifts = {k: _chain_shift(chains[k], lattice_tol) for k in chosen}
    chosen = [k for k in chosen if shifts[k] is not None]
    if not chosen:
        return frames
    states = [chains[k][0] for k in chosen]
    for j in range(1, steps + 1):  # the forecast state at step j, in place of the true frame j of each chain
        states = [{**chains[k][j], "positions": state["positions"] + displacement, "velocities": velocity}
                  for k, state, (displacement, velocity) in zip(chosen, states, predict(states))]
    frames = list(frames)
    for k, state in zip(chosen, states):
        frame, positions = frames[k], state["positions"] + shifts[k]
        frames[k] = {**frame, "positions": positions, "velocities": state["velocities"], "pushforward": True,
                     "target_displacement": frame["positions"] + frame["target_displacement"] - positions}
    return frames


def _chain_shift(chain: list[dict], tol: float):
    """The lattice vectors per atom from the first frame's unrolled states to the last frame's positions (the sum
    over its links), or None where a link does not continue the frame before."""
    total = 0.0
    for before, frame in zip(chain, chain[1:]):
        shift = _lattice_shift(before, frame, tol)
        if shift is None:
            return None
        total = total + shift
    return total


def _lattice_shift(before: dict, frame: dict, tol: float):
    """Per-atom lattice vectors from `before`'s next state to `frame`'s positions, or None when `frame` does not
    continue `before` (another trajectory, another system)."""
    if np.shape(before["positions"]) != np.shape(frame["positions"]) or not np.array_equal(before["species"],
                                                                                             frame["species"]):
        return None
    cell = np.asarray(frame["cell"])
    gap = frame["positions"] - (before["positions"] + before["target_displacement"])
    fractional = gap @ np.linalg.inv(cell)
    whole = np.round(fractional)
    if np.abs(fractional - whole).max() > tol or not np.allclose(before["target_velocity"], frame["velocities"],
                                                                   rtol=0, atol=1e-12):
        return None
    return whole @ cell
