"""Dihedral-angle distributions and free-energy profiles of molecules (paper Results, Fig. 2C).

    F(φ) = −k_B T ln p(φ),  shifted so min F = 0; bins with p = 0 are NaN (never visited).

Quadruples are 0-based atom indices (as in ASE), given as "i,j,k,l". Bond vectors use the minimum image when the
cell is periodic, so a molecule split by the box still gives its true angle. Angles in degrees, in (−180, 180].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.geometry import get_dihedrals

from trajcast_dist import units
from trajcast_dist.errors import UserError

__all__ = ["DihedralResult", "parse_quadruple", "dihedral_angles", "dihedral_free_energy"]


@dataclass
class DihedralResult:
    """Per quadruple label "i-j-k-l": probability density (1/deg) and F (eV) on bin centres `angle_deg`."""
    angle_deg: np.ndarray
    probability: dict[str, np.ndarray]
    free_energy_ev: dict[str, np.ndarray]
    temperature_K: float


def parse_quadruple(text: str, n_atoms: int | None = None) -> tuple[int, int, int, int]:
    try:
        quad = tuple(int(x) for x in text.split(","))
    except ValueError:
        quad = ()
    if len(quad) != 4 or len(set(quad)) != 4 or min(quad) < 0:
        raise UserError(f"--dihedral {text!r}: give four different 0-based atom indices like 0,1,2,3")
    if n_atoms is not None and max(quad) >= n_atoms:
        raise UserError(f"--dihedral {text!r}: index {max(quad)} ≥ number of atoms {n_atoms}")
    return quad


def dihedral_angles(positions, quads, cell=None, pbc=False) -> np.ndarray:
    """Angles (deg, in (−180, 180]) of each quadruple in one frame."""
    r = np.asarray(positions, dtype=float)
    q = np.asarray(quads, dtype=int).reshape(-1, 4)
    periodic = bool(np.all(pbc))
    angles = get_dihedrals(r[q[:, 1]] - r[q[:, 0]], r[q[:, 2]] - r[q[:, 1]], r[q[:, 3]] - r[q[:, 2]],
                           cell=cell if periodic else None, pbc=pbc if periodic else None)
    return np.where(angles > 180.0, angles - 360.0, angles)


def dihedral_free_energy(angles_deg, quads, temperature_K: float, bins: int = 72) -> DihedralResult:
    """Histogram (frames, quads) angles into p(φ) and F(φ) = −k_B T ln p(φ)."""
    angles_deg = np.asarray(angles_deg, dtype=float).reshape(len(angles_deg), -1)
    edges = np.linspace(-180.0, 180.0, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    probability, free_energy = {}, {}
    for column, quad in enumerate(quads):
        label = "-".join(str(i) for i in quad)
        p, _ = np.histogram(angles_deg[:, column], bins=edges, density=True)
        with np.errstate(divide="ignore"):
            f = np.where(p > 0, -units.KB_EV_PER_K * temperature_K * np.log(np.where(p > 0, p, 1.0)), np.nan)
        probability[label] = p
        free_energy[label] = f - np.nanmin(f)
    return DihedralResult(centres, probability, free_energy, float(temperature_K))
