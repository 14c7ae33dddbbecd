"""Data pipeline speed (issue 4): LAMMPS water ns/day on 1 and 2 MPI ranks, pair-building and store-reading
throughput, and the reader's peak memory on a store of many shards.

    .venv/bin/python benchmarks/data_pipeline.py [--steps 2000] [--reader-frames 2560] [--shard-frames 64]

Prints a table and appends it to benchmarks/RESULTS.md under "## Data pipeline (issue 4)".
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from trajcast_dist.units import ns_per_day

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed LAMMPS NVE steps")
    parser.add_argument("--pair-frames", type=int, default=1001, help="frames of the trajectory turned into pairs")
    parser.add_argument("--reader-frames", type=int, default=2560, help="frames in the reader benchmark store")
    parser.add_argument("--shard-frames", type=int, default=64)
    parser.add_argument("--lammps-worker", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lammps_worker:
        return _lammps_worker(Path(args.lammps_worker), args.steps)

    import vesin  # noqa: F401  (imported up front: it pulls in torch, seconds that are not pipeline work)
    import zarr  # noqa: F401

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for ranks in (1, 2):
            rows.append(_lammps_ns_per_day(tmp / f"lmp{ranks}", ranks, args.steps))
        rows.append(_pairs_throughput(tmp, args.pair_frames))
        rows += _reader_throughput(tmp, args.reader_frames, args.shard_frames)
    table = _table(rows)
    print(table)
    _append_results(table, " ".join([Path(sys.executable).name, *sys.argv]))
    return 0


# --- LAMMPS ------------------------------------------------------------------------------------------------
def _lammps_ns_per_day(workdir: Path, ranks: int, steps: int) -> tuple:
    workdir.mkdir()
    command = [sys.executable, __file__, "--lammps-worker", str(workdir), "--steps", str(steps)]
    if ranks > 1:
        command = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(ranks), *command]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    speed = ns_per_day(0.5, report["seconds"] / steps)
    return (f"LAMMPS SPC/Fw water, 192 atoms, PPPM, {ranks} MPI rank(s)", f"{speed:.2f} ns/day",
            f"{steps / report['seconds']:.0f} steps/s")


def _lammps_worker(workdir: Path, steps: int) -> int:
    from trajcast_dist.data.lammps_session import LammpsSession
    from trajcast_dist.data.water import WATER

    session = LammpsSession("real", log_path=workdir / "log.lammps")
    WATER.build(session, workdir, (1, 1, 1), 0)
    session.commands(["velocity all create 300 4928459 mom yes rot no dist gaussian loop geom",
                      "fix nve all nve", "run 200"])  # warm-up
    session.comm.Barrier()
    start = time.perf_counter()
    session.command(f"run {steps}")
    seconds = time.perf_counter() - start
    session.close()
    if session.is_main:
        print(json.dumps({"seconds": seconds}))
    return 0


# --- pairs and reader ----------------------------------------------------------------------------------------
def _pairs_throughput(tmp: Path, n_frames: int) -> tuple:
    import ase.io
    from ase import Atoms

    from trajcast_dist import units
    from trajcast_dist.data.pairs import build_pairs
    from trajcast_dist.structures import water_box

    base = water_box(seed=0)
    rng = np.random.default_rng(0)
    velocities = rng.normal(0, 0.01, (len(base), 3))
    frames = []
    for k in range(n_frames):
        atoms = Atoms(numbers=base.numbers, positions=base.positions + velocities * 5.0 * k, cell=base.cell,
                      pbc=True)
        atoms.wrap()
        atoms.set_velocities(units.velocities_to_ase(velocities))
        atoms.info["time_fs"] = 5.0 * k
        frames.append(atoms)
    ase.io.write(tmp / "synthetic.xyz", frames, format="extxyz")
    start = time.perf_counter()
    out = build_pairs([tmp / "synthetic.xyz"], 5.0, tmp / "pairs.zarr", split={"train": 1.0}, shard_frames=64,
                      progress=False)
    seconds = time.perf_counter() - start
    n_pairs = n_frames - 1
    return (f"pairs build (extxyz → zarr, 192 atoms, {n_pairs} pairs, incl. read + statistics)",
            f"{n_pairs / seconds:.0f} frames/s", f"{seconds:.1f} s, store {_size_mb(out):.1f} MB")


def _reader_throughput(tmp: Path, n_frames: int, shard_frames: int) -> list:
    from trajcast_dist.data.store import PairStore, PairStoreWriter

    n_atoms = 192
    path = tmp / "reader.zarr"
    writer = PairStoreWriter(path, shard_frames)
    split = writer.create_split("train", n_frames, n_atoms)
    rng = np.random.default_rng(0)
    species = np.tile([8, 1, 1], n_atoms // 3)
    for _ in range(n_frames):
        split.append({"positions": rng.uniform(0, 12.4, (n_atoms, 3)), "velocities": rng.normal(size=(n_atoms, 3)),
                      "target_displacement": rng.normal(size=(n_atoms, 3)),
                      "target_velocity": rng.normal(size=(n_atoms, 3)), "species": species,
                      "cell": np.eye(3) * 12.4, "pbc": np.ones(3, bool)})
    split.flush()
    writer.set_attrs({"species": [1, 8]})
    dataset_mb = _size_mb(path)
    rows = []
    for world_size in (1, 2):
        store = PairStore(path)
        tracemalloc.start()
        start = time.perf_counter()
        count = sum(1 for _ in store.iter_frames("train", 0, world_size, shuffle_seed=0))
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append((f"reader rank 0 of {world_size} ({n_frames} frames = {n_frames // shard_frames} shards of "
                     f"{shard_frames}, {dataset_mb:.0f} MB on disk)", f"{count / seconds:.0f} frames/s",
                     f"peak traced memory {peak / 2**20:.1f} MB"))
    return rows


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


# --- report ------------------------------------------------------------------------------------------------
def _table(rows) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'measurement':<{width}} | {'rate':>14} | notes |", f"|{'-' * (width + 2)}|{'-' * 16}|-------|"]
    lines += [f"| {name:<{width}} | {rate:>14} | {notes} |" for name, rate, notes in rows]
    return "\n".join(lines)


def _append_results(table: str, command: str) -> None:
    model = next((line.split(":", 1)[1].strip() for line in
                  subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                  if line.startswith("Model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO).stdout.strip()
    results = REPO / "benchmarks" / "RESULTS.md"
    heading = "## Data pipeline (issue 4)"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    section = (f"\n{heading}\n\n- command: `{command}`\n- machine: {model}, {os.cpu_count()} cores "
               f"(load average 1/5/15 min at the end: {load}; other jobs share these cores)\n"
               f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}\n"
               f"- commit: {commit}\n\n{table}\n")
    with open(results, "a") as handle:
        if not results.exists() or results.stat().st_size == 0:
            handle.write("# Benchmark results\n")
        handle.write(section)


if __name__ == "__main__":
    sys.exit(main())
