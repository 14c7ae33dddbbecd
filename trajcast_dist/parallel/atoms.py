"""The atoms a rank owns, as plain numpy arrays, and their packing into one float64 row per atom for messages
(ids and image counts are exact in float64 up to 2⁵³)."""

from dataclasses import dataclass

import numpy as np

__all__ = ["LocalAtoms", "GHOST_COLUMNS", "ATOM_COLUMNS"]

ATOM_COLUMNS = 11  # x y z, vx vy vz, image ×3, atomic number, global id
GHOST_COLUMNS = 8  # x y z (image-shifted), vx vy vz, atomic number, global id


@dataclass
class LocalAtoms:
    positions: np.ndarray  # (n, 3) Å, wrapped
    velocities: np.ndarray  # (n, 3) Å/fs
    image: np.ndarray  # (n, 3) periodic image counts
    numbers: np.ndarray  # (n,) atomic numbers
    ids: np.ndarray  # (n,) global ids, sorted

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> "LocalAtoms":
        return cls.unpack(np.zeros((0, ATOM_COLUMNS)))

    def pack(self) -> np.ndarray:
        return np.concatenate([self.positions, self.velocities, self.image, self.numbers[:, None],
                               self.ids[:, None]], axis=1).astype(np.float64)

    @classmethod
    def unpack(cls, rows: np.ndarray) -> "LocalAtoms":
        """Atoms from packed rows, sorted by global id (a canonical order whatever the message history)."""
        rows = rows[np.argsort(rows[:, 10], kind="stable")]
        return cls(positions=np.ascontiguousarray(rows[:, 0:3]), velocities=np.ascontiguousarray(rows[:, 3:6]),
                   image=np.rint(rows[:, 6:9]).astype(np.int64), numbers=np.rint(rows[:, 9]).astype(np.int64),
                   ids=np.rint(rows[:, 10]).astype(np.int64))

    def ghost_rows(self) -> np.ndarray:
        return np.concatenate([self.positions, self.velocities, self.numbers[:, None], self.ids[:, None]],
                              axis=1).astype(np.float64)
