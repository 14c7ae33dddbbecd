"""Pairs and the zarr store: minimum-image targets, training statistics, rank sharding, bad input (issue 4)."""

import os

import ase.io
import numpy as np
import pytest
from ase import Atoms

from trajcast_dist import units
from trajcast_dist.cli.main import main
from trajcast_dist.data.pairs import build_pairs, minimum_image_displacement
from trajcast_dist.data.store import PairStore
from trajcast_dist.errors import UserError

CELL = np.array([[8.0, 0.0, 0.0], [2.0, 7.5, 0.0], [1.0, -1.5, 9.0]])  # triclinic


def write_trajectory(path, n_frames=40, n_atoms=12, spacing_fs=1.0, seed=0, speed=0.3, mutate=None):
    """Atoms moving in straight lines (wrapped into a triclinic cell), so true displacements are v·Δt."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 1, (n_atoms, 3)) @ CELL
    velocity = rng.normal(0, speed, (n_atoms, 3))  # Å/fs: fast enough to cross the boundary in a few frames
    numbers = rng.choice([1, 8], n_atoms)
    frames = []
    for k in range(n_frames):
        atoms = Atoms(numbers=numbers, positions=start + velocity * k * spacing_fs, cell=CELL, pbc=True)
        atoms.wrap()
        atoms.set_velocities(units.velocities_to_ase(velocity))
        atoms.info["time_fs"] = k * spacing_fs
        atoms.info["step"] = k
        frames.append(mutate(k, atoms) if mutate else atoms)
    ase.io.write(path, frames, format="extxyz")
    return start, velocity


def test_displacements_are_unwrapped_across_periodic_boundaries(tmp_path):
    _, velocity = write_trajectory(tmp_path / "a.xyz")
    out = build_pairs([tmp_path / "a.xyz"], 3.0, tmp_path / "s.zarr", split={"train": 1.0}, shard_frames=8,
                      progress=False)
    store = PairStore(out)
    assert store.n_frames("train") == 40 - 3
    for frame in store.read_frames("train", 0, store.n_frames("train")):
        np.testing.assert_allclose(frame["target_displacement"], velocity * 3.0, atol=1e-7)
        np.testing.assert_allclose(frame["target_velocity"], velocity, atol=1e-7)  # extxyz keeps 8 decimals
    wrapped = ase.io.read(tmp_path / "a.xyz", ":")
    jumps = np.abs(wrapped[3].positions - wrapped[0].positions - velocity * 3.0).max()
    assert jumps > 1.0, "the synthetic trajectory must cross a periodic boundary"


def test_minimum_image_matches_brute_force_triclinic():
    rng = np.random.default_rng(1)
    r0 = rng.uniform(0, 1, (50, 3)) @ CELL
    true = rng.normal(0, 1.0, (50, 3))
    r1 = r0 + true + rng.integers(-2, 3, (50, 3)) @ CELL  # same point, other images
    np.testing.assert_allclose(minimum_image_displacement(r0, r1, CELL, [True] * 3), true, atol=1e-10)


def test_statistics_equal_direct_numpy(tmp_path):
    for k in range(3):
        write_trajectory(tmp_path / f"t{k}.xyz", n_frames=20, seed=k, speed=0.02)
    out = build_pairs([tmp_path / f"t{k}.xyz" for k in range(3)], 2.0, tmp_path / "s.zarr",
                      split_by_trajectory={"train": 2, "val": 1}, cutoff_A=3.0, shard_frames=5, progress=False)
    stats = PairStore(out).attrs["statistics"]
    d, v, temps, neighbours, atoms = [], [], [], 0, 0
    inverse = np.linalg.inv(CELL)
    for k in range(2):  # training trajectories only
        frames = ase.io.read(tmp_path / f"t{k}.xyz", ":")
        for a, b in zip(frames[:-2], frames[2:]):
            delta = (b.positions - a.positions) @ inverse
            d.append((delta - np.round(delta)) @ CELL)
            v.append(units.velocities_from_ase(b.get_velocities()))
            va = units.velocities_from_ase(a.get_velocities())
            kinetic = 0.5 * units.AMU_A2_PER_FS2_IN_EV * np.sum(a.get_masses()[:, None] * va**2)
            temps.append(2 * kinetic / ((3 * len(a) - 3) * units.KB_EV_PER_K))
            neighbours += sum(len(row) - 1 for row in _within(a, 3.0))
            atoms += len(a)
    assert stats["displacement_rms_A"] == pytest.approx(np.sqrt(np.mean(np.square(d))), rel=1e-10)
    assert stats["velocity_rms_A_per_fs"] == pytest.approx(np.sqrt(np.mean(np.square(v))), rel=1e-10)
    assert stats["temperature_K"] == pytest.approx(np.mean(temps), rel=1e-10)
    assert stats["avg_num_neighbors"] == pytest.approx(neighbours / atoms, rel=1e-10)
    assert stats["mb_vrms_lightest_A_per_fs"] == pytest.approx(
        np.sqrt(3 * units.KB_EV_PER_K * np.mean(temps) / (units.masses_amu([1])[0] * units.AMU_A2_PER_FS2_IN_EV)))
    assert set(stats) == {"displacement_rms_A", "velocity_rms_A_per_fs", "avg_num_neighbors", "temperature_K",
                          "mb_vrms_lightest_A_per_fs"}


def _within(atoms, cutoff):
    """Neighbour lists by brute force over enough periodic images (includes the atom itself once)."""
    shifts = np.array(np.meshgrid(*[range(-2, 3)] * 3)).reshape(3, -1).T @ CELL
    rows = []
    for i in range(len(atoms)):
        diff = atoms.positions[None, :, :] + shifts[:, None, :] - atoms.positions[i]
        rows.append(np.flatnonzero(np.linalg.norm(diff, axis=-1).ravel() < cutoff))
    return rows


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_cover_every_frame_exactly_once(tmp_path, world_size):
    """Validation/test frames: each exactly once over the ranks (`rank_frames`)."""
    from trajcast_dist.training.sampler import rank_frames

    write_trajectory(tmp_path / "a.xyz", n_frames=41, n_atoms=4)
    store = PairStore(build_pairs([tmp_path / "a.xyz"], 1.0, tmp_path / "s.zarr", split={"train": 1.0},
                                  shard_frames=6, progress=False))  # 40 frames in shards of 6, the last one short
    seen = [f["index"] for rank in range(world_size) for f in rank_frames(store, "train", rank, world_size)]
    assert sorted(seen) == list(range(40))


def test_global_batches_do_not_depend_on_ranks_and_change_with_epoch(tmp_path):
    """Training frames: the frames of global batch k are the same on 1 and 2 ranks, none repeats in an epoch,
    and the order is reproducible and changes with the epoch (`GlobalBatchSampler`)."""
    from trajcast_dist.training.sampler import GlobalBatchSampler

    write_trajectory(tmp_path / "a.xyz", n_frames=41, n_atoms=4)
    store = PairStore(build_pairs([tmp_path / "a.xyz"], 1.0, tmp_path / "s.zarr", split={"train": 1.0},
                                  shard_frames=6, progress=False))

    def epoch(world_size, number):
        ranks = [GlobalBatchSampler(store, "train", 4, r, world_size, seed=1).batches(number)
                 for r in range(world_size)]
        return [sorted(f["index"] for _, frames in steps for f in frames) for steps in zip(*ranks)]

    one = epoch(1, 3)
    assert one == epoch(2, 3) == epoch(1, 3)
    flat = [i for batch in one for i in batch]
    assert len(flat) == len(set(flat)) > 4 and all(len(batch) == 4 for batch in one)
    assert one != epoch(1, 4)


def test_round_trip_extxyz_to_zarr_to_frames(tmp_path):
    write_trajectory(tmp_path / "a.xyz", n_frames=10)
    store = PairStore(build_pairs([tmp_path / "a.xyz"], 1.0, tmp_path / "s.zarr", split={"train": 1.0},
                                  shard_frames=4, progress=False))
    frames = ase.io.read(tmp_path / "a.xyz", ":")
    for k in range(9):
        got = store.frame("train", k)
        np.testing.assert_array_equal(got["positions"], frames[k].positions)
        np.testing.assert_allclose(got["velocities"], units.velocities_from_ase(frames[k].get_velocities()),
                                   rtol=1e-14)
        np.testing.assert_array_equal(got["species"], frames[k].numbers)
        np.testing.assert_array_equal(got["cell"], np.asarray(frames[k].cell))
        assert got["pbc"].tolist() == [True] * 3
    assert store.attrs["dt_fs"] == 1.0 and store.attrs["species"] == [1, 8]
    assert store.attrs["provenance"]["sources"][0]["sha256"]


def test_variable_atom_counts_across_trajectories(tmp_path):
    write_trajectory(tmp_path / "a.xyz", n_frames=6, n_atoms=5)
    write_trajectory(tmp_path / "b.xyz", n_frames=6, n_atoms=9, seed=3)
    store = PairStore(build_pairs([tmp_path / "a.xyz", tmp_path / "b.xyz"], 1.0, tmp_path / "s.zarr",
                                  split={"train": 1.0}, progress=False))
    sizes = {len(f["species"]) for f in store.read_frames("train", 0, store.n_frames("train"))}
    assert sizes == {5, 9}


def test_validation_and_test_come_from_other_trajectories(tmp_path):
    paths = []
    for k in range(5):
        write_trajectory(tmp_path / f"t{k}.xyz", n_frames=10, seed=k)
        paths.append(tmp_path / f"t{k}.xyz")
    store = PairStore(build_pairs(paths, 1.0, tmp_path / "s.zarr",
                                  split_by_trajectory={"train": 3, "val": 1, "test": 1}, progress=False))
    files = {split: {s["file"] for s in store.attrs["splits"][split]["sources"]} for split in store.splits}
    assert files["train"].isdisjoint(files["val"]) and files["train"].isdisjoint(files["test"])
    assert len(files["train"]) == 3 and store.n_frames("test") == 9
    fractions = PairStore(build_pairs(paths[:2], 1.0, tmp_path / "f.zarr", split={"train": 0.5, "val": 0.5},
                                      progress=False))
    assert {s["file"] for s in fractions.attrs["splits"]["val"]["sources"]} == {str(paths[1].resolve())}


def test_max_pairs_limits_each_split(tmp_path):
    write_trajectory(tmp_path / "a.xyz", n_frames=30)
    store = PairStore(build_pairs([tmp_path / "a.xyz"], 1.0, tmp_path / "s.zarr", split={"train": 1.0},
                                  max_pairs=7, progress=False))
    assert store.n_frames("train") == 7


def _drop_velocities(k, atoms):
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True, info=atoms.info)


BAD_INPUTS = {
    "no velocities": dict(mutate=_drop_velocities),
    "changing atom count": dict(mutate=lambda k, a: a[:-1] if k == 5 else a),
    "species order": dict(mutate=lambda k, a: a[::-1] if k == 5 else a),
    "non-increasing time": dict(mutate=lambda k, a: (a.info.update(time_fs=2.0) or a) if k == 4 else a),
    "too coarse": dict(speed=4.0),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_trajectory_raises_user_error_and_writes_nothing(tmp_path, case):
    write_trajectory(tmp_path / "a.xyz", n_frames=12, **BAD_INPUTS[case])
    with pytest.raises(UserError):
        build_pairs([tmp_path / "a.xyz"], 1.0, tmp_path / "s.zarr", split={"train": 1.0}, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["a.xyz"]


def test_dt_not_a_multiple_of_frame_spacing(tmp_path):
    write_trajectory(tmp_path / "a.xyz", n_frames=12, spacing_fs=2.0, speed=0.02)
    with pytest.raises(UserError, match="multiple of the frame spacing"):
        build_pairs([tmp_path / "a.xyz"], 3.0, tmp_path / "s.zarr", progress=False)
    assert sorted(os.listdir(tmp_path)) == ["a.xyz"]


def test_existing_output_needs_overwrite(tmp_path):
    write_trajectory(tmp_path / "a.xyz", n_frames=6, speed=0.02)
    first = build_pairs([tmp_path / "a.xyz"], 1.0, tmp_path / "s.zarr", split={"train": 1.0}, progress=False)
    with pytest.raises(UserError, match="--overwrite"):
        build_pairs([tmp_path / "a.xyz"], 2.0, first, split={"train": 1.0}, progress=False)
    assert PairStore(first).attrs["dt_fs"] == 1.0
    build_pairs([tmp_path / "a.xyz"], 2.0, first, split={"train": 1.0}, overwrite=True, progress=False)
    assert PairStore(first).attrs["dt_fs"] == 2.0
    assert sorted(os.listdir(tmp_path)) == ["a.xyz", "s.zarr"]


def test_cli_pairs_and_info(tmp_path, capsys):
    write_trajectory(tmp_path / "a.xyz", n_frames=8, speed=0.02)
    write_trajectory(tmp_path / "b.xyz", n_frames=8, speed=0.02, seed=2)
    store = str(tmp_path / "s.zarr")
    assert main(["data", "pairs", str(tmp_path / "a.xyz"), str(tmp_path / "b.xyz"), "--dt", "2", "--out", store,
                 "--split-by-trajectory", "train=1,val=1", "--shard-frames", "4"]) == 0
    assert main(["data", "pairs", str(tmp_path / "a.xyz"), "--dt", "2", "--out", store]) == 2
    assert main(["data", "info", store]) == 0
    out = capsys.readouterr().out
    assert "displacement_rms_A" in out and "split train" in out and "sha256" in out
    assert main(["data", "md", "nosuchsystem", "--out", str(tmp_path / "md")]) == 2
    assert not (tmp_path / "md").exists()
