"""Streaming reader for extxyz trajectories: time axis, velocities in Å/fs and unwrapped positions.

Forecast files (paper Methods, "Trajectory Forecasting") store positions wrapped into the cell plus an integer
`image` array (N×3 periodic image counts, as LAMMPS ix iy iz), so unwrapped = positions + image @ cell. MD
references may lack it; then consecutive frames are joined by the minimum image in fractional coordinates, which
is exact for any (triclinic) cell as long as no atom moves more than half a cell width between stored frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import ase
import ase.io
import numpy as np

from trajcast_dist.errors import UserError, read_user_file
from trajcast_dist.io.structure import has_velocities, velocities_A_per_fs
from trajcast_dist.progress import progress_bar

__all__ = ["Frame", "FirstFrame", "iter_frames", "peek", "Unwrapper", "FrameBuffer", "half_min_width_A"]

# Relative tolerance on the spacing of stored frames: FFT correlations need a uniform time axis.
_DT_RTOL = 1e-4


@dataclass(frozen=True)
class Frame:
    """One analysed frame: `index` counts frames after --skip-ps and --stride."""
    index: int
    time_fs: float
    atoms: ase.Atoms
    unwrapped_A: np.ndarray
    velocities_A_per_fs: np.ndarray | None


@dataclass(frozen=True)
class FirstFrame:
    """What the analysis must know about a file before streaming it (species, cell, periodicity)."""
    path: Path
    numbers: np.ndarray
    cell: np.ndarray
    periodic: bool
    has_velocities: bool


def half_min_width_A(cell) -> float:
    """Half the shortest perpendicular width of the cell (volume / largest face area), valid for triclinic cells."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    faces = [np.linalg.norm(np.cross(cell[i], cell[j])) for i, j in ((1, 2), (2, 0), (0, 1))]
    return 0.5 * volume / max(faces)


def peek(path) -> FirstFrame:
    """Read only the first frame of `path`; raise UserError for a missing or unreadable file or mixed pbc."""
    path = Path(path)
    atoms = read_user_file(path, "trajectory file", lambda p: ase.io.read(p, index=0),
                           "write it with ase.io.write(..., format='extxyz')")
    return FirstFrame(path, atoms.numbers.copy(), np.array(atoms.cell), _periodic(atoms, path),
                      has_velocities(atoms))


def iter_frames(path, *, dt_fs: float | None = None, skip_ps: float = 0.0, stride: int = 1,
                progress: bool = True) -> Iterator[Frame]:
    """Yield frames of `path` one at a time (ase.io.iread), with time, unwrapped positions and velocities (Å/fs).

    Time comes from `atoms.info["time_fs"]`; where a file has none, frame k of the file is at k·dt_fs. Frames
    before t_first + skip_ps are dropped (equilibration); then every `stride`-th frame is kept. The stored time
    step must be uniform (FFT correlations assume it): a restart that duplicated or dropped frames is an error.
    """
    path = Path(path)
    first = peek(path)
    if stride < 1:
        raise UserError(f"--stride {stride}: must be a positive integer")
    unwrap = Unwrapper(first.periodic)
    t_start = None
    first_kept = None
    previous_time = None
    step_fs = None
    index = 0
    frames = _read_frames(path)
    for raw_index, atoms in enumerate(progress_bar(frames, desc=f"reading {path.name}", unit=" frames",
                                                   enabled=progress, leave=False)):
        time_fs = _time_fs(atoms, raw_index, dt_fs, path)
        if t_start is None:
            t_start = time_fs
        _check_same_system(atoms, first, raw_index, path)
        # Unwrap every frame, also skipped ones: minimum-image joining needs consecutive stored frames.
        unwrapped = unwrap(atoms)
        if time_fs < t_start + 1000.0 * skip_ps - 1e-9:
            continue
        if first_kept is None:
            first_kept = raw_index
        if (raw_index - first_kept) % stride:
            continue
        if previous_time is not None:
            step = time_fs - previous_time
            if step_fs is None:
                step_fs = step
            if step <= 0 or abs(step - step_fs) > _DT_RTOL * abs(step_fs):
                raise UserError(f"{path}: frame {raw_index} is {step:g} fs after the previous analysed frame, "
                                f"earlier frames were {step_fs:g} fs apart; remove duplicated/missing frames "
                                "(e.g. from a restart) so the time step is uniform")
        previous_time = time_fs
        velocities = velocities_A_per_fs(atoms) if has_velocities(atoms) else None
        yield Frame(index, time_fs, atoms, unwrapped, velocities)
        index += 1


def _read_frames(path: Path) -> Iterator:
    """ase.io.iread, with a malformed frame (typically the half-written last frame of a killed run) reported in
    one line naming the file and the frame."""
    frames = ase.io.iread(path, index=":", format="extxyz")
    index = 0
    while True:
        try:
            atoms = next(frames)
        except StopIteration:
            return
        except Exception as err:  # ASE raises many types for a malformed frame
            detail = " ".join(str(err).split())[:200] or type(err).__name__
            raise UserError(f"{path}: frame {index} is truncated or malformed ({detail}); cut the file after the "
                            "last whole frame (a run continued with --restart ... --append does that)") from None
        yield atoms
        index += 1


class Unwrapper:
    """Turns wrapped positions into continuous ones, frame after frame (call once per stored frame, in order).

    With an `image` array the unwrapped position is exact at any stride. Without it, the image count is tracked
    by rounding the fractional displacement between consecutive frames to the nearest integer.
    """

    def __init__(self, periodic: bool):
        self.periodic = periodic
        self._previous_frac = None
        self._image = None

    def __call__(self, atoms: ase.Atoms) -> np.ndarray:
        positions = atoms.get_positions()
        cell = np.array(atoms.cell)
        if not self.periodic:
            return positions
        if "image" in atoms.arrays:
            return positions + np.asarray(atoms.arrays["image"], dtype=float) @ cell
        frac = np.linalg.solve(cell.T, positions.T).T
        if self._previous_frac is None:
            self._image = np.zeros_like(frac)
        else:
            self._image -= np.round(frac - self._previous_frac)
        self._previous_frac = frac
        return (frac + self._image) @ cell


class FrameBuffer:
    """Collects per-frame (N, 3) arrays as float32 into a (frames, N, 3) array, with a memory cap.

    Memory: 12·N bytes per frame while reading, about twice that for a moment when `array()` joins the chunks;
    `max_bytes` bounds the first figure and the error names --stride / --max-memory-gb as the fix.
    """

    def __init__(self, what: str, path, max_bytes: float):
        self.what = what
        self.path = path
        self.max_bytes = max_bytes
        self._rows: list[np.ndarray] = []
        self._nbytes = 0

    def append(self, values: np.ndarray) -> None:
        row = np.asarray(values, dtype=np.float32)
        self._nbytes += row.nbytes
        if self._nbytes > self.max_bytes:
            raise UserError(f"{self.path}: keeping {self.what} of all frames needs more than "
                            f"{self.max_bytes / 2**30:.2f} GiB; raise --max-memory-gb or read fewer frames "
                            "with --stride / --skip-ps")
        self._rows.append(row)

    def __len__(self) -> int:
        return len(self._rows)

    def array(self) -> np.ndarray:
        if not self._rows:
            return np.zeros((0, 0, 3), dtype=np.float32)
        return np.stack(self._rows)


def _periodic(atoms: ase.Atoms, path) -> bool:
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.all():
        return True
    if not pbc.any():
        return False
    raise UserError(f"{path}: pbc={pbc.tolist()} (periodic in some directions only) is not supported; "
                    "use a fully periodic cell or pbc=False for a molecule")


def _time_fs(atoms: ase.Atoms, raw_index: int, dt_fs: float | None, path) -> float:
    if "time_fs" in atoms.info:
        return float(atoms.info["time_fs"])
    if dt_fs is None:
        raise UserError(f"{path}: frame {raw_index} has no info['time_fs']; pass --dt-fs (the time between "
                        "stored frames in fs)")
    return raw_index * float(dt_fs)


def _check_same_system(atoms: ase.Atoms, first: FirstFrame, raw_index: int, path) -> None:
    if len(atoms) != len(first.numbers) or np.any(atoms.numbers != first.numbers):
        raise UserError(f"{path}: frame {raw_index} has different atoms ({len(atoms)}) than frame 0 "
                        f"({len(first.numbers)}); analyse one system per file")
