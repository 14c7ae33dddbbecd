"""Restart files: the full state plus the thermostat's random-generator state, written atomically, so
`--restart` continues a killed or finished run bit for bit (also with a different number of ranks).

The file is an ordinary `.npz` (what `np.savez` writes, so `np.load` and older versions read it), but it is
written and read a block of atoms at a time: `RestartWriter` appends each block's rows to one `.npy` part per
array beside the target, then stores the parts in the zip (a streamed copy) and renames it into place;
`RestartReader` reads rows straight from the zip members. No process needs the whole system in memory.
"""

import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from trajcast_dist.dynamics.state import SystemState
from trajcast_dist.errors import UserError, read_user_file
from trajcast_dist.io.atomic import atomic_path, remove_stale_temporaries, temporary_name
from trajcast_dist.io.blocks import CHUNK_ATOMS, AtomBlock

__all__ = ["RestartReader", "RestartWriter", "load_restart", "check_model", "prepare_append"]

_FORMAT = "trajcast-dist-restart-1"
# per-atom arrays: name → (dtype, columns); ids are global, so any number of ranks can read the file back
_ATOM_ARRAYS = {"positions": ("<f8", 3), "velocities": ("<f8", 3), "numbers": ("<i8", 1), "image": ("<i8", 3),
                "ids": ("<i8", 1)}


class RestartWriter:
    """Write a restart from blocks in any order of arrival (`add`), then `finish()` (atomic) or `abort()`."""

    def __init__(self, path, header: dict, rng_state: dict, settings: dict, record: dict | None = None):
        """`record`: what else the run wants to find again (model identity, temperature, trajectory offset)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.header, self._written = header, 0
        self.meta = {**(record or {}), "format": _FORMAT, "step": int(header["step"]),
                     "time_fs": float(header["time_fs"]), "rng_state": rng_state, "settings": settings}
        remove_stale_temporaries(self.path, "parts")
        self._parts_dir = temporary_name(self.path, "parts")
        shutil.rmtree(self._parts_dir, ignore_errors=True)
        self._parts_dir.mkdir()
        self._parts = {name: self._open_part(name, dtype, cols) for name, (dtype, cols) in _ATOM_ARRAYS.items()}

    def add(self, block) -> None:
        rows = len(block.ids)
        for name, (dtype, cols) in _ATOM_ARRAYS.items():
            values = np.ascontiguousarray(getattr(block, name), dtype=dtype)
            self._parts[name].write(values.reshape(rows, cols).tobytes())
        self._written += rows

    def finish(self) -> None:
        for handle in self._parts.values():
            handle.close()
        try:
            if self._written != self.header["n_atoms"]:
                raise RuntimeError(f"restart got {self._written} atoms, expected {self.header['n_atoms']}")
            with atomic_path(self.path) as tmp:
                self._zip(tmp)
        finally:
            shutil.rmtree(self._parts_dir, ignore_errors=True)

    def abort(self) -> None:
        for handle in self._parts.values():
            handle.close()
        shutil.rmtree(self._parts_dir, ignore_errors=True)

    def _open_part(self, name: str, dtype: str, cols: int):
        """A `.npy` file whose header already states the final shape; rows are appended as they come."""
        shape = (self.header["n_atoms"], 3) if cols == 3 else (self.header["n_atoms"],)
        handle = open(self._parts_dir / f"{name}.npy", "wb")
        np.lib.format.write_array_header_1_0(handle, {"descr": dtype, "fortran_order": False, "shape": shape})
        return handle

    def _zip(self, target: Path) -> None:
        # the layout of np.savez: one stored (uncompressed) member per array, named NAME.npy
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name in _ATOM_ARRAYS:
                archive.write(self._parts_dir / f"{name}.npy", f"{name}.npy")
            small = {"cell": np.asarray(self.header["cell"], dtype=np.float64),
                     "pbc": np.asarray(self.header["pbc"], dtype=bool),
                     "meta": np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8)}
            for name, value in small.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, value, allow_pickle=False)


class RestartReader:
    """The metadata (step, time, rng state, settings, cell, pbc) at once; the atoms a block at a time."""

    def __init__(self, path):
        self.path = Path(path)
        self.meta, self.cell, self.pbc, self.n_atoms = read_user_file(self.path, "restart file", _read_header,
                                                                      "give a .restart.npz that forecast wrote")
        if self.meta.get("format") != _FORMAT:
            raise UserError(f"{self.path}: unsupported restart format {self.meta.get('format')!r}")

    @property
    def rng_state(self) -> dict:
        return self.meta["rng_state"]

    @property
    def settings(self) -> dict:
        return self.meta["settings"]

    def header(self) -> dict:
        return {"n_atoms": self.n_atoms, "cell": np.asarray(self.cell, dtype=np.float64).reshape(3, 3),
                "pbc": np.asarray(self.pbc, dtype=bool).reshape(3), "step": int(self.meta["step"]),
                "time_fs": float(self.meta["time_fs"])}

    def blocks(self, chunk: int = CHUNK_ATOMS) -> Iterator[AtomBlock]:
        """Rows in file order (id order for files this version writes; any order is accepted by callers that
        sort by id)."""
        with zipfile.ZipFile(self.path) as archive:
            members = {name: archive.open(f"{name}.npy") for name in _ATOM_ARRAYS}
            try:
                readers = {name: _row_reader(member, self.n_atoms) for name, member in members.items()}
                for start in range(0, self.n_atoms, chunk):
                    rows = min(chunk, self.n_atoms - start)
                    yield AtomBlock(**{name: read(rows) for name, read in readers.items()})
            finally:
                for member in members.values():
                    member.close()


def load_restart(path) -> tuple[SystemState, dict, dict]:
    """Return (state, rng_state, settings): the whole state, for serial runs (the reader's blocks, in id order,
    as distributed runs may store atoms in rank order)."""
    reader = RestartReader(path)
    header, blocks = reader.header(), list(reader.blocks())
    rows = {name: np.concatenate([getattr(block, name) for block in blocks]) for name in _ATOM_ARRAYS}
    order = np.argsort(rows["ids"], kind="stable")
    state = SystemState(**{name: rows[name][order] for name in _ATOM_ARRAYS}, cell=header["cell"],
                        pbc=header["pbc"], step=header["step"], time_fs=header["time_fs"])
    return state, reader.rng_state, reader.settings


def check_model(restart_path, stored: dict | None, record: dict) -> None:
    """Refuse to continue a restart with another model than the one that wrote it (`io.checkpoint.model_record`
    of each): other weights, species, cutoff or Δt would silently change the dynamics mid-run. Restarts of earlier
    versions record no model and are taken on trust."""
    if stored is None:
        return
    differ = [key for key in ("dt_fs", "species", "cutoff_A", "weights_sha256", "velocity_gain", "position_noise_A")
              if stored.get(key) != record.get(key)]
    if differ:
        raise UserError(f"--restart {restart_path} was written with model {stored.get('file')} "
                        f"(Δt {stored.get('dt_fs')} fs, species {stored.get('species')}, cutoff "
                        f"{stored.get('cutoff_A')} Å); model {record['file']} differs in {', '.join(differ)}: "
                        "continue with the model that wrote the restart (omit --model to use it)")


def prepare_append(restart: RestartReader) -> bool:
    """Get the trajectory of the run that wrote `restart` ready for a continuation that appends (to it or to a
    new file); returns whether the continuation must write the restart's own frame.

    Each restart records where its frame begins in its trajectory and is in place before that frame is
    flushed, so a killed run leaves its trajectory at most one frame ahead of the restart and possibly a
    half-written frame at the end. Anything after the restart's frame is cut off (and the frame itself, if
    incomplete, which the continuation then writes again, the same bytes), so the trajectory continued in place,
    or `cat` of it and a new file, is one trajectory without a repeated or missing step."""
    previous, start = restart.meta.get("trajectory"), restart.meta.get("frame_start")
    if previous is None or start is None:
        raise UserError(f"--append: {restart.path} does not record where its frames were written (a run without "
                        "--output, or an earlier version); continue into a new --output without --append")
    previous = restart.path.parent / previous
    end = _frame_end(previous, start, restart.n_atoms, int(restart.meta["step"]))
    if previous.is_file() and previous.stat().st_size >= start:
        os.truncate(previous, end or start)
    return end is None


def _frame_end(path: Path, start: int, n_atoms: int, step: int) -> int | None:
    """Offset just after the extxyz frame of `step` that begins at `start` in `path`; None if it is not there
    whole."""
    if not path.is_file():
        return None
    with open(path, "rb") as handle:
        handle.seek(start)
        if handle.readline().strip() != str(n_atoms).encode():
            return None
        if f" step={step} ".encode() not in b" " + handle.readline().replace(b"\n", b" "):
            return None
        for _ in range(n_atoms):
            if not handle.readline().endswith(b"\n"):
                return None
        return handle.tell()


def _read_header(path: Path) -> tuple[dict, np.ndarray, np.ndarray, int]:
    """(meta, cell, pbc, number of atoms) without reading the atoms."""
    with zipfile.ZipFile(path) as archive:
        with archive.open("ids.npy") as member:
            n_atoms = int(_npy_header(member)[0][0])
        return (json.loads(bytes(_read_member(archive, "meta")).decode()), _read_member(archive, "cell"),
                _read_member(archive, "pbc"), n_atoms)


def _read_member(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    with archive.open(f"{name}.npy") as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _npy_header(member) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of a `.npy` stream, leaving it at the first data byte."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    return np.lib.format.read_array_header_2_0(member)  # np.save writes 2.0 only for huge headers


def _row_reader(member, n_atoms: int):
    """A function returning the next `rows` rows of a C-ordered (N,) or (N, k) `.npy` member."""
    shape, fortran, dtype = _npy_header(member)
    if fortran or shape[0] != n_atoms:
        raise UserError(f"restart member {member.name}: shape {shape} (Fortran order {fortran}), expected "
                        f"{n_atoms} C-ordered rows")
    per_row = int(np.prod(shape[1:], dtype=np.int64))

    def read(rows: int) -> np.ndarray:
        data = member.read(rows * per_row * dtype.itemsize)
        if len(data) != rows * per_row * dtype.itemsize:
            raise UserError(f"restart member {member.name} is truncated")
        return np.frombuffer(data, dtype=dtype).reshape((rows, *shape[1:])).copy()

    return read
