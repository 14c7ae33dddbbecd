"""Streaming extxyz input: the header line of one frame is parsed once, then the atom lines are read a chunk of
atoms at a time, so a 10⁶-atom structure never sits in memory whole (ASE's reader keeps a Python tuple per
atom, some hundreds of bytes each).

The header goes through ASE's own parsers (`key_val_str_to_dict`, `parse_properties`) and the values through
the same `float`/`int` conversions and the same momenta ÷ mass division, so the arrays equal `ase.io.read` +
`state_from_atoms` bit for bit. Files this reader does not cover (VEC cell lines, frames it cannot find)
raise `NotStreamable`, and callers fall back to ASE.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.data import atomic_masses
from ase.io.extxyz import key_val_str_to_dict, parse_properties
from ase.symbols import symbols2numbers

from trajcast_dist import units
from trajcast_dist.errors import UserError
from trajcast_dist.io.blocks import CHUNK_ATOMS, AtomBlock

__all__ = ["ExtxyzFrame", "NotStreamable", "is_extxyz", "open_extxyz", "read_blocks", "read_numbers"]

_DEFAULT_PROPERTIES = "species:S:1:pos:R:3"  # what ASE assumes when the header has no Properties


class NotStreamable(Exception):
    """A file (or feature of one) the streaming reader does not handle; read it with ASE instead."""


@dataclass
class ExtxyzFrame:
    """Where one frame's atom lines start and what their columns mean."""
    path: Path
    n_atoms: int
    cell: np.ndarray  # (3, 3) Å, rows are cell vectors (ASE's Lattice transposed)
    pbc: np.ndarray  # (3,) bool
    info: dict  # the other key=value pairs, as ASE parses them
    columns: dict  # ASE array name → (first column, number of columns, converter)
    offset: int  # byte offset of the first atom line

    @property
    def has_velocities(self) -> bool:
        return "momenta" in self.columns or "velocities" in self.columns

    def header(self) -> dict:
        return {"n_atoms": self.n_atoms, "cell": self.cell.copy(), "pbc": self.pbc.copy(),
                "step": int(self.info.get("step", 0)), "time_fs": float(self.info.get("time_fs", 0.0))}


def is_extxyz(path) -> bool:
    """Files ASE reads as extxyz by their name (ASE's own guess for .xyz)."""
    return Path(path).suffix.lower() in (".xyz", ".extxyz")


def open_extxyz(path, index: int = -1) -> ExtxyzFrame:
    """Locate frame `index` (last by default) and parse its header; the atom lines are not read yet."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"structure file {path} not found")
    offset, n_atoms, comment = _locate_frame(path, index)
    frame = _parse_header(path, n_atoms, comment, offset)
    if frame.n_atoms == 0:
        raise UserError(f"{path} contains no atoms")
    if frame.pbc.any() and abs(np.linalg.det(frame.cell)) < 1e-9:
        raise UserError(f"{path} is periodic (pbc={frame.pbc.tolist()}) but has no cell; set Lattice=... or "
                        "pbc=False")
    return frame


def read_blocks(frame: ExtxyzFrame, chunk: int = CHUNK_ATOMS) -> Iterator[AtomBlock]:
    """The frame's atoms, `chunk` at a time, in file order (ids 0..N−1); velocities in Å/fs (zero if absent)."""
    for start, tokens in _token_chunks(frame, chunk):
        yield _block(frame, tokens, start)


def read_numbers(frame: ExtxyzFrame, chunk: int = CHUNK_ATOMS) -> np.ndarray:
    """Atomic numbers of every atom (8 B/atom): what Maxwell–Boltzmann velocities need, without the rest."""
    return np.concatenate([_numbers(frame, tokens) for _, tokens in _token_chunks(frame, chunk)])


# --- locating and parsing the header ----------------------------------------------------------------------------
def _locate_frame(path: Path, index: int) -> tuple[int, int, str]:
    """Scan frame headers line by line as ASE does (count line, comment, N atom lines); return the chosen
    frame's (atom-line offset, N, comment)."""
    frames = []
    with open(path, "rb") as handle:
        while True:
            line = handle.readline()
            if not line.strip():
                break
            n_atoms = _count(path, line, len(frames))
            comment = handle.readline().decode()
            frames.append((handle.tell(), n_atoms, comment))
            for _ in range(n_atoms):
                handle.readline()
            after = handle.tell()
            if handle.readline().lstrip().startswith(b"VEC"):
                raise NotStreamable(f"{path}: cell given as VEC lines")
            handle.seek(after)
            if 0 <= index < len(frames):
                break
    if not frames:
        raise UserError(f"{path} contains no atoms")
    try:
        return frames[index]
    except IndexError:
        raise NotStreamable(f"{path}: no frame {index}") from None


def _count(path: Path, line: bytes, frame: int) -> int:
    try:
        return int(line)
    except ValueError:
        got = line.decode(errors="replace").strip()[:40]
        raise UserError(f"cannot read {path} as a structure (frame {frame}: expected an atom count, got {got!r}); "
                        "use a format ASE reads, e.g. extxyz") from None


def _parse_header(path: Path, n_atoms: int, comment: str, offset: int) -> ExtxyzFrame:
    """Cell, pbc and Properties exactly as `ase.io.extxyz._read_xyz_frame` derives them."""
    comment = comment.strip()
    try:
        info = key_val_str_to_dict(comment) if comment else {}
        pbc = info.pop("pbc") if "pbc" in info else ([True] * 3 if "Lattice" in info else [False] * 3)
        cell = np.array(info.pop("Lattice").T, dtype=np.float64) if "Lattice" in info else np.zeros((3, 3))
        properties, names, _, converters = parse_properties(info.pop("Properties", _DEFAULT_PROPERTIES))
    except Exception as err:  # ASE's parsers raise ValueError, KeyError, ... for a malformed header
        raise UserError(f"cannot read {path} as a structure (header: {err}); use a format ASE reads, "
                        "e.g. extxyz") from None
    columns, first = {}, 0
    for name in names:
        ase_name, ncols = properties[name]
        columns[ase_name] = (first, ncols, converters[first])
        first += ncols
    if "positions" not in columns or not ({"numbers", "symbols"} & columns.keys()):
        raise UserError(f"cannot read {path} as a structure (Properties has no pos or species/Z column)")
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
    return ExtxyzFrame(path, n_atoms, cell, pbc, info, columns, offset)


# --- atom lines -------------------------------------------------------------------------------------------------
def _token_chunks(frame: ExtxyzFrame, chunk: int) -> Iterator[tuple[int, list]]:
    """(first id, split lines) for consecutive chunks of the frame's atom lines."""
    width = max(first + ncols for first, ncols, _ in frame.columns.values())
    with open(frame.path, "rb") as handle:
        handle.seek(frame.offset)
        for start in range(0, frame.n_atoms, chunk):
            tokens = [handle.readline().split() for _ in range(min(chunk, frame.n_atoms - start))]
            for row, values in enumerate(tokens):
                if len(values) < width:
                    raise UserError(f"cannot read {frame.path} as a structure (atom {start + row}: "
                                    f"{len(values)} columns, Properties needs {width}; file cut short?)")
            yield start, tokens


def _block(frame: ExtxyzFrame, tokens: list, start: int) -> AtomBlock:
    where = str(frame.path)
    numbers = _numbers(frame, tokens)
    positions = _column(frame, tokens, "positions")
    if not np.isfinite(positions).all():
        raise UserError(f"{where} has NaN/inf positions; fix the file")
    velocities = _velocities(frame, tokens, numbers)
    if not np.isfinite(velocities).all():
        raise UserError(f"{where} has NaN/inf velocities; fix the file")
    image = _column(frame, tokens, "image", np.int64) if "image" in frame.columns else np.zeros((len(tokens), 3))
    return AtomBlock(positions=positions, velocities=velocities, numbers=numbers,
                     image=np.asarray(image, dtype=np.int64).reshape(-1, 3),
                     ids=np.arange(start, start + len(tokens), dtype=np.int64))


def _numbers(frame: ExtxyzFrame, tokens: list) -> np.ndarray:
    """Z column if present (ASE prefers it), else species symbols, capitalised as ASE does."""
    if "numbers" in frame.columns:
        return _column(frame, tokens, "numbers", np.int64)
    first = frame.columns["symbols"][0]
    try:
        return np.asarray(symbols2numbers([t[first].decode().capitalize() for t in tokens]), dtype=np.int64)
    except KeyError as err:
        raise UserError(f"cannot read {frame.path} as a structure (unknown element {err}); use a format ASE "
                        "reads, e.g. extxyz") from None


def _velocities(frame: ExtxyzFrame, tokens: list, numbers: np.ndarray) -> np.ndarray:
    """Å/fs from ASE units: momenta ÷ masses (the masses column if any, as `Atoms.get_velocities`)."""
    if "momenta" in frame.columns:
        masses = _column(frame, tokens, "masses") if "masses" in frame.columns else atomic_masses[numbers]
        return units.velocities_from_ase(_column(frame, tokens, "momenta") / masses[:, np.newaxis])
    if "velocities" in frame.columns:
        return units.velocities_from_ase(_column(frame, tokens, "velocities"))
    return np.zeros((len(tokens), 3))


def _column(frame: ExtxyzFrame, tokens: list, name: str, dtype=np.float64) -> np.ndarray:
    """One property's values through ASE's converter (`float`/`int` of each token; both take bytes and give
    the same value as for text), shape (n,) or (n, k); no intermediate Python list."""
    first, ncols, convert = frame.columns[name]
    values = (convert(t[c]) for t in tokens for c in range(first, first + ncols))
    try:
        array = np.fromiter(values, dtype=dtype, count=len(tokens) * ncols).reshape(len(tokens), ncols)
    except ValueError as err:
        raise UserError(f"cannot read {frame.path} as a structure ({name}: {err})") from None
    return array[:, 0] if ncols == 1 else array
