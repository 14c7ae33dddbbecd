"""α-quartz with the BKS potential and truncated Coulomb, 162 atoms, 1 fs (paper, "Quartz").

LAMMPS `units metal`. Short range: BKS Buckingham terms (van Beest, Kramer & van Santen 1990) cut at 5.5 Å.
Coulomb: truncated and damped (Wolf sum in its damped-shifted-force form, LAMMPS `coul/dsf`, α = 0.2 Å⁻¹,
cutoff 10.17 Å as in the truncated-Coulomb BKS of Carré et al. 2007): no Ewald sum, and energy and force go
smoothly to zero at the cutoff (plain `coul/wolf` drifted ~30× more in NVE). BKS diverges to −∞ at short Si–O and O–O distances, so a steep
30–6 Mie repulsion (σ_SiO = 1.313 Å, σ_OO = 1.779 Å, after Saika-Voivod et al.) is overlaid; it is below
10⁻⁴ eV at the equilibrium Si–O distance (1.61 Å). Structure: the 9-atom α-quartz cell (P3₂21, a = 4.916 Å,
c = 5.405 Å) repeated 3×3×2.
"""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.spacegroup import crystal

from trajcast_dist.data.lammps_session import lammps_seed
from trajcast_dist.data.systems import MDSystem, Stage
from trajcast_dist.errors import UserError

__all__ = ["QUARTZ", "alpha_quartz", "FORCE_FIELD"]

# Mie 30–6 prefactor C = (n/(n-m))(n/m)^(m/(n-m)); ε below reproduces 4ε'[(σ/r)^30 − (σ/r)^6] with ε' in eV.
_MIE_C = (30 / 24) * 5 ** (6 / 24)
_EPS_SIO, _EPS_OO = 4 * 0.0030 / _MIE_C, 4 * 0.0011 / _MIE_C

# Atom types: 1 = Si, 2 = O.
FORCE_FIELD = [
    "pair_style hybrid/overlay buck 5.5 coul/dsf 0.2 10.17 mie/cut 3.0",
    "pair_coeff * * coul/dsf",
    "pair_coeff 1 1 buck 0.0 1.0 0.0",
    "pair_coeff 1 2 buck 18003.7572 0.205205 133.5381",
    "pair_coeff 2 2 buck 1388.7730 0.362319 175.0000",
    "pair_coeff 1 1 mie/cut 0.0 1.0 30.0 6.0",
    f"pair_coeff 1 2 mie/cut {_EPS_SIO:.8f} 1.313 30.0 6.0",
    f"pair_coeff 2 2 mie/cut {_EPS_OO:.8f} 1.779 30.0 6.0",
    "pair_modify shift yes",  # no energy jumps at the short-range cutoffs (NVE conservation)
    "set type 1 charge 2.4",
    "set type 2 charge -1.2",
    "neighbor 2.0 bin",
    "neigh_modify every 1 delay 0 check yes",
]


def alpha_quartz(repeat=(3, 3, 2)) -> Atoms:
    """α-quartz, 9 atoms per cell (Levien et al. 1980: Si x = 0.4697, O (0.4135, 0.2669, 0.1191)).

    Written in ASE's P3₁21 setting (the mirror image of the tabulated P3₂21 one): Si–O = 1.605/1.614 Å.
    """
    cell = crystal(["Si", "O"], basis=[(0.4697, 0.0, 1 / 3), (0.4135, 0.2669, 1 / 3 - 0.1191)], spacegroup=152,
                   cellpar=[4.916, 4.916, 5.405, 90, 90, 120])
    return cell.repeat(repeat)


def _build(session, workdir: Path, repeat, seed: int):
    atoms = alpha_quartz(tuple(3 * r if i < 2 else 2 * r for i, r in enumerate(repeat)))
    if session.is_main:
        ase.io.write(workdir / "quartz.data", atoms, format="lammps-data", specorder=["Si", "O"],
                     atom_style="charge", masses=True, units="metal")
    session.comm.Barrier()
    _read(session, workdir / "quartz.data")
    return atoms.numbers.copy()


def _load(session, atoms: Atoms, workdir: Path):
    if set(np.unique(atoms.numbers)) - {8, 14}:
        raise UserError("quartz frames must contain only Si and O atoms (atomic numbers 14 and 8)")
    ase.io.write(workdir / "quartz.data", atoms, format="lammps-data", specorder=["Si", "O"],
                 atom_style="charge", masses=True, units="metal")
    _read(session, workdir / "quartz.data")
    return atoms.numbers.copy()


def _equilibration(temperature_K: float, total_fs: float, seed: int):
    # Paper: NpT at 1 bar (Berendsen barostat, 0.1 ps) for 10 ps, then NVT (Nosé–Hoover chain of 3, 0.1 ps) for
    # 50 ps; a shorter total keeps the 1:5 ratio. LAMMPS' Berendsen barostat refuses triclinic boxes, so the NpT
    # stage uses the Nosé–Hoover (MTK) barostat on all six cell components, relaxation 1 ps.
    npt_steps = int(round(total_fs / 6))
    nvt_steps = int(round(total_fs)) - npt_steps
    t = temperature_K
    npt = Stage([f"velocity all create {t} {lammps_seed(seed)} mom yes rot no dist gaussian loop geom",
                 f"fix npt all npt temp {t} {t} 0.1 tri 1.0 1.0 1.0",
                 ], npt_steps, ["npt"])
    nvt = Stage([f"fix equil all nvt temp {t} {t} 0.1 tchain 3"], nvt_steps, ["equil"])
    return [npt, nvt]


def _read(session, data_path: Path) -> None:
    # The atom map lets the driver scatter/gather atoms by ID (molecular styles have one by default).
    session.commands(["atom_style charge", "atom_modify map array", "boundary p p p", f"read_data {data_path}", *FORCE_FIELD,
                      "timestep 0.001"])


QUARTZ = MDSystem(name="quartz", unit_style="metal", timestep_fs=1.0, csvr_tau_fs=100.0, start_window_K=10.0,
                  start_separation_fs=100.0, build=_build, equilibration=_equilibration, load=_load)
