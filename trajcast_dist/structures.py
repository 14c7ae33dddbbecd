"""Small built-in structures for tests, benchmarks and the demo (no files or downloads needed)."""

import numpy as np
from ase import Atoms

__all__ = ["WATER_BOX_A", "water_box"]

WATER_BOX_A = 12.4172  # the paper's box of 64 H2O, ≈ 1 g/cm³
_OH_A, _HOH_DEG = 1.012, 113.24  # SPC/Fw equilibrium geometry


def water_box(molecules_per_side: int = 4, box_A: float | None = None, seed: int = 0) -> Atoms:
    """Cubic box of molecules_per_side³ randomly oriented SPC/Fw-shaped H2O on a simple-cubic lattice; the
    default box has the density of the paper's (64 molecules in WATER_BOX_A)."""
    box_A = WATER_BOX_A * molecules_per_side / 4 if box_A is None else box_A
    rng = np.random.default_rng(seed)
    half = np.radians(_HOH_DEG) / 2.0
    molecule = np.array([[0.0, 0.0, 0.0],
                         [_OH_A * np.sin(half), 0.0, _OH_A * np.cos(half)],
                         [-_OH_A * np.sin(half), 0.0, _OH_A * np.cos(half)]])
    spacing = box_A / molecules_per_side
    positions = []
    for ijk in np.ndindex(molecules_per_side, molecules_per_side, molecules_per_side):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        positions.append(molecule @ q.T + (np.array(ijk) + 0.5) * spacing)
    n = molecules_per_side ** 3
    return Atoms(numbers=[8, 1, 1] * n, positions=np.concatenate(positions), cell=np.eye(3) * box_A, pbc=True)
