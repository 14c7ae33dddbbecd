"""The training-pair store: a sharded zarr v3 group, and `PairStore`, its reader for (distributed) training.

Layout (DESIGN §6). One group per split (`train/`, `val/`, `test/`), each with arrays

    positions, velocities, target_displacement, target_velocity   float64  frames × max_atoms × 3   (Å, Å/fs)
    species                                                        int32    frames × max_atoms       (Z, 0 = pad)
    n_atoms                                                        int32    frames
    cell                                                           float64  frames × 3 × 3           (Å, rows)
    pbc                                                            bool     frames × 3

Frames of different sizes are padded to the largest; `n_atoms` says how many rows are real. Every array is
chunked up to 4 frames per chunk (cheap random access; one-frame chunks made reading 4× slower from per-chunk
overhead) and sharded `shard_frames` frames per shard (one file per shard, so each rank reads whole files).
Root attributes: `species`, `dt_fs`, `cutoff_A`, `units`,
`statistics` (training split only), `splits`, `shard_frames`, `provenance`.

Reading: `read_frames(split, start, stop)` (one read per block of frames) and `frame(split, index)`, as dicts
of numpy arrays. Which rank reads which blocks is the trainer's business (`training/sampler.py`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import zarr

from trajcast_dist.errors import UserError

__all__ = ["PairStore", "PairStoreWriter", "FRAME_KEYS", "check_replaceable", "commit_store"]

CHUNK_FRAMES = 4
VECTOR_KEYS = ("positions", "velocities", "target_displacement", "target_velocity")
FRAME_KEYS = (*VECTOR_KEYS, "species", "cell", "pbc")


class PairStore:
    """Read-only access to a pair store (see module docstring)."""

    def __init__(self, path):
        self.path = Path(path)
        if not (self.path / "zarr.json").is_file():
            raise UserError(f"{self.path}: not a zarr store (no zarr.json); build one with `trajcast-dist data pairs`")
        try:
            self._root = zarr.open_group(str(self.path), mode="r")
            self.attrs = dict(self._root.attrs)
            self.shard_frames = int(self.attrs["shard_frames"])
        except Exception as err:  # zarr raises many types for a damaged zarr.json
            detail = f"no attribute {err}" if isinstance(err, KeyError) else " ".join(str(err).split())[:200]
            raise UserError(f"{self.path / 'zarr.json'}: cannot read the pair store ({detail}); it is damaged: "
                            "rebuild it with `trajcast-dist data pairs`") from None

    @property
    def splits(self) -> list[str]:
        return sorted(self._root.group_keys())

    def check_split(self, split: str) -> None:
        self._group(split)

    def check_dt(self, dt_fs: float) -> None:
        """A model forecasting Δt must be measured on pairs Δt apart."""
        if abs(float(self.attrs["dt_fs"]) - dt_fs) > 1e-9:
            raise UserError(f"{self.path} pairs are Δt = {self.attrs['dt_fs']} fs apart but the model forecasts "
                            f"{dt_fs} fs; use a store built with --dt {dt_fs}")

    def n_frames(self, split: str) -> int:
        return int(self._group(split)["n_atoms"].shape[0])

    def shards(self, split: str) -> list[tuple[int, int]]:
        """(start, stop) frame ranges of the split's shards, in storage order."""
        n = self.n_frames(split)
        return [(s, min(s + self.shard_frames, n)) for s in range(0, n, self.shard_frames)]

    def frame(self, split: str, index: int) -> dict:
        n = self.n_frames(split)
        if not 0 <= index < n:
            raise IndexError(f"frame {index} is outside split {split!r} of {n} frames")
        return self.read_frames(split, index, index + 1)[0]

    def read_frames(self, split: str, start: int, stop: int) -> list[dict]:
        """Frames [start, stop) of a split as dicts, in one read (a training batch's block)."""
        block = self._read(split, slice(start, stop))
        return [_frame_from_block(block, i, start + i) for i in range(stop - start)]

    def _group(self, split: str):
        if split not in self._root.group_keys():
            raise UserError(f"{self.path}: has no split {split!r}; it has {', '.join(self.splits)}")
        return self._root[split]

    def _read(self, split: str, rows: slice) -> dict:
        group = self._group(split)
        return {key: group[key][rows] for key in (*FRAME_KEYS, "n_atoms")}


class PairStoreWriter:
    """Writes a store split by split, one whole shard per write (sharded arrays are written shard-wise)."""

    def __init__(self, path, shard_frames: int):
        self.path = Path(path)
        self.shard_frames = int(shard_frames)
        self._root = zarr.open_group(str(self.path), mode="w-")

    def create_split(self, name: str, n_frames: int, max_atoms: int) -> "_SplitWriter":
        group = self._root.create_group(name)
        shard = max(1, min(self.shard_frames, n_frames))
        arrays = {}
        for key in VECTOR_KEYS:
            arrays[key] = _array(group, key, (n_frames, max_atoms, 3), "float64", shard)
        arrays["species"] = _array(group, "species", (n_frames, max_atoms), "int32", shard)
        arrays["n_atoms"] = _array(group, "n_atoms", (n_frames,), "int32", shard)
        arrays["cell"] = _array(group, "cell", (n_frames, 3, 3), "float64", shard)
        arrays["pbc"] = _array(group, "pbc", (n_frames, 3), "bool", shard)
        return _SplitWriter(arrays, shard, max_atoms)

    def set_attrs(self, attrs: dict) -> None:
        self._root.attrs.update({**attrs, "shard_frames": self.shard_frames})


def check_replaceable(out_path, overwrite: bool) -> None:
    """An existing `out_path` may be replaced only with `overwrite`, and only if it is a pair store this tool
    wrote: --overwrite must never delete a directory of other files (say `.` or a home directory)."""
    out_path = Path(out_path)
    if not out_path.exists():
        return
    if not overwrite:
        raise UserError(f"{out_path} already exists; pass --overwrite to replace it")
    if not _is_pair_store(out_path):
        raise UserError(f"{out_path} exists and is not a pair store written by trajcast-dist; --overwrite replaces "
                        "only those: choose another --out (or remove it yourself)")


def commit_store(tmp_path: Path, out_path: Path, overwrite: bool) -> None:
    """Move a finished store into place; an existing one is replaced only as `check_replaceable` allows."""
    tmp_path, out_path = Path(tmp_path), Path(out_path)
    check_replaceable(out_path, overwrite)
    if out_path.exists():
        trash = out_path.with_name(f".{out_path.name}.old-{os.getpid()}")
        os.replace(out_path, trash)
        os.replace(tmp_path, out_path)
        shutil.rmtree(trash) if trash.is_dir() else trash.unlink()
        return
    os.replace(tmp_path, out_path)


class _SplitWriter:
    """Buffers frames and writes them one shard at a time."""

    def __init__(self, arrays: dict, shard: int, max_atoms: int):
        self.arrays, self.shard, self.max_atoms = arrays, shard, max_atoms
        self.written = 0
        self._buffer: list[dict] = []

    def append(self, frame: dict) -> None:
        self._buffer.append(frame)
        if len(self._buffer) == self.shard:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        n, m = len(self._buffer), self.max_atoms
        rows = slice(self.written, self.written + n)
        for key in VECTOR_KEYS:
            block = np.zeros((n, m, 3))
            for i, frame in enumerate(self._buffer):
                block[i, : len(frame[key])] = frame[key]
            self.arrays[key][rows] = block
        species = np.zeros((n, m), dtype=np.int32)
        for i, frame in enumerate(self._buffer):
            species[i, : len(frame["species"])] = frame["species"]
        self.arrays["species"][rows] = species
        self.arrays["n_atoms"][rows] = np.array([len(f["species"]) for f in self._buffer], dtype=np.int32)
        self.arrays["cell"][rows] = np.stack([f["cell"] for f in self._buffer])
        self.arrays["pbc"][rows] = np.stack([f["pbc"] for f in self._buffer])
        self.written += n
        self._buffer = []


def _is_pair_store(path: Path) -> bool:
    """A directory holding only what `build_pairs` writes: zarr.json with our attributes and the split groups."""
    try:
        attrs = json.loads((path / "zarr.json").read_text())["attributes"]
        written_by_us = str(attrs["provenance"]["package"]).startswith("trajcast-dist")
        entries = {entry.name for entry in path.iterdir()}
        return written_by_us and entries <= {"zarr.json", *attrs["splits"]}
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _array(group, name, shape, dtype, shard_frames):
    # A shard must hold whole chunks: take the largest chunk length up to CHUNK_FRAMES that divides it.
    chunk = next(c for c in range(min(CHUNK_FRAMES, shard_frames), 0, -1) if shard_frames % c == 0)
    chunks = (chunk, *shape[1:])
    shards = (shard_frames, *shape[1:])
    # Uncompressed: float64 MD coordinates hardly compress, and zstd halved read throughput.
    return group.create_array(name, shape=shape, dtype=dtype, chunks=chunks, shards=shards, fill_value=0,
                              compressors=None)


def _frame_from_block(block: dict, i: int, index: int) -> dict:
    n = int(block["n_atoms"][i])
    frame = {key: block[key][i, :n] for key in (*VECTOR_KEYS, "species")}
    frame["cell"], frame["pbc"], frame["index"] = block["cell"][i], block["pbc"][i], index
    return frame
