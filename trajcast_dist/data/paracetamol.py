"""One paracetamol molecule (C8H9NO2, 20 atoms) in vacuum with OPLS-AA via moltemplate (paper, "Paracetamol").

LAMMPS `units real`, 0.5 fs. The force field is instantiated by moltemplate (`moltemplate.sh` then
`cleanup_moltemplate.sh`, run as subprocesses) from its `oplsaa2024.lt` (Jorgensen et al. 2024 parameter set;
identical to the `oplsaa.lt` moltemplate ships): harmonic bonds/angles, OPLS dihedrals, cvff impropers,
geometric mixing, 1-4 LJ and Coulomb scaled by 0.5 (`special_bonds lj/coul 0 0 0.5`). moltemplate's
periodic `lj/charmm/coul/long` + PPPM is replaced by plain `lj/cut/coul/cut` with a 15 Å cutoff: the
molecule spans ≈ 9 Å, so every intramolecular pair is inside the cutoff and the energy is the exact
vacuum LJ + Coulomb sum (no Ewald, no cutoff discontinuity). Non-periodic box `boundary f f f`,
−50..50 Å; with zero net momentum the molecule stays at the origin.

Atom types (oplsaa2024.lt numbering, "In Charges" section of that file). Paracetamol is
4-hydroxyacetanilide, and OPLS-AA has explicit N-phenylacetamide (acetanilide) types, so the amide side
uses those and the phenol side uses the phenol types; both groups are neutral with the benzene C–H:

    atom                     type  OPLS class  charge  description in oplsaa2024.lt
    ring C bonded to N        266  CA          +0.085  ipso C in N-phenylacetamide
    ring C–H carbons (4)      145  CA          -0.115  Benzene C
    ring H (4)                146  HA          +0.115  Benzene H
    ring C bonded to O        166  CA          +0.100  C(OH) phenol
    hydroxyl O                167  OH          -0.530  O phenol
    hydroxyl H                168  HO          +0.430  H phenol
    amide N                   265  N          -0.385  N: N-phenylacetamide
    amide H                   241  H          +0.300  H on N: secondary amide
    carbonyl C                235  C          +0.500  C: C=O in amide
    carbonyl O                236  O          -0.500  O: C=O in amide
    methyl C                  135  CT          -0.180  CH3 all-atom C: alkanes
    methyl H (3)              140  HC          +0.060  H all-atom H: alkanes

The acyl methyl uses the classic OPLS-AA alkane CH3/HC types (135/140), as the amide entry prescribes
("Acyl R in amides is neutral - use alkane parameters"); the OPLS/2020 alkane types 54/60 were refit for
liquid alkanes. Net charge: 0.185 (ring C) − 0.100 (OH) − 0.085 (NH) + 0 (C=O, CH3) = 0.

Geometry: a hand-written Z-matrix of trans-acetanilide-like paracetamol (ring, amide and hydroxyl coplanar,
the carbonyl O syn to the ring), minimised in LAMMPS before equilibration.

The moltemplate output depends only on the .lt text and the moltemplate version, and takes ~20 s to
generate, so it is cached (TRAJCAST_DIST_CACHE, else $XDG_CACHE_HOME/trajcast-dist, else
~/.cache/trajcast-dist); every run copies the .lt file and moltemplate's outputs to OUT/moltemplate/.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms

from trajcast_dist.data.lammps_session import lammps_seed
from trajcast_dist.data.systems import MDSystem, Stage
from trajcast_dist.errors import UserError

__all__ = ["PARACETAMOL", "paracetamol_atoms", "moltemplate_lt", "moltemplate_files", "equilibrium_bond_lengths",
           "BONDS", "NUMBERS", "OPLS_TYPES", "CUTOFF_A"]

CUTOFF_A = 15.0
BOX_HALF_A = 50.0
FORCE_FIELD_FILE = "oplsaa2024.lt"
NH_CHAINS, NH_DAMP_FS = 10, 5.0

# name, atomic number, OPLS-AA type, then the Z-matrix: (bonded atom, r / Å), (angle atom, θ / °),
# (dihedral atom, φ / °); indices are 0-based rows of this table. Every atom is bonded to its first reference;
# the ring closure C1–C6 is the one bond not in the Z-matrix.
_ZMATRIX = [
    ("C1", 6, 266, None, None, None),  # ring C bonded to N
    ("C2", 6, 145, (0, 1.39), None, None),
    ("C3", 6, 145, (1, 1.39), (0, 120.0), None),
    ("C4", 6, 166, (2, 1.39), (1, 120.0), (0, 0.0)),  # ring C bonded to O
    ("C5", 6, 145, (3, 1.39), (2, 120.0), (1, 0.0)),
    ("C6", 6, 145, (4, 1.39), (3, 120.0), (2, 0.0)),
    ("N", 7, 265, (0, 1.41), (1, 120.0), (2, 180.0)),
    ("C7", 6, 235, (6, 1.36), (0, 128.0), (1, 0.0)),  # carbonyl C
    ("O7", 8, 236, (7, 1.23), (6, 123.0), (0, 0.0)),  # carbonyl O, syn to the ring (trans amide)
    ("C8", 6, 135, (7, 1.51), (6, 115.0), (0, 180.0)),  # methyl C
    ("O4", 8, 167, (3, 1.36), (2, 120.0), (1, 180.0)),  # hydroxyl O
    ("H2", 1, 146, (1, 1.08), (0, 120.0), (5, 180.0)),
    ("H3", 1, 146, (2, 1.08), (1, 120.0), (0, 180.0)),
    ("H5", 1, 146, (4, 1.08), (3, 120.0), (2, 180.0)),
    ("H6", 1, 146, (5, 1.08), (4, 120.0), (3, 180.0)),
    ("HO", 1, 168, (10, 0.96), (3, 109.0), (2, 0.0)),
    ("HN", 1, 241, (6, 1.01), (0, 116.0), (1, 180.0)),
    ("H81", 1, 140, (9, 1.09), (7, 109.5), (6, 60.0)),
    ("H82", 1, 140, (9, 1.09), (7, 109.5), (6, 180.0)),
    ("H83", 1, 140, (9, 1.09), (7, 109.5), (6, -60.0)),
]
NAMES = [row[0] for row in _ZMATRIX]
NUMBERS = np.array([row[1] for row in _ZMATRIX])
OPLS_TYPES = [row[2] for row in _ZMATRIX]
BONDS = [(i, row[3][0]) for i, row in enumerate(_ZMATRIX) if row[3] is not None] + [(0, 5)]


def paracetamol_atoms() -> Atoms:
    """The unminimised Z-matrix geometry, centre of mass at the origin, no cell, pbc False."""
    x = np.zeros((len(_ZMATRIX), 3))
    for i, (_, _, _, bond, angle, dihedral) in enumerate(_ZMATRIX):
        if i == 1:
            x[1] = [bond[1], 0.0, 0.0]
        elif i == 2:  # in the xy plane, angle at atom 1
            a, b = x[angle[0]], x[bond[0]]
            u = (a - b) / np.linalg.norm(a - b)
            theta = np.radians(angle[1])
            x[2] = b + bond[1] * (np.cos(theta) * u + np.sin(theta) * np.array([-u[1], u[0], 0.0]))
        elif i > 2:
            x[i] = _place(x[dihedral[0]], x[angle[0]], x[bond[0]], bond[1], angle[1], dihedral[1])
    atoms = Atoms(numbers=NUMBERS, positions=x, pbc=False)
    atoms.positions -= atoms.get_center_of_mass()
    return atoms


def _place(a, b, c, r, theta_deg, phi_deg):
    """Natural-extension reference frame: atom d with |cd| = r, angle bcd = θ, dihedral abcd = φ."""
    theta, phi = np.radians(theta_deg), np.radians(phi_deg)
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    return c + r * (-np.cos(theta) * bc + np.sin(theta) * np.cos(phi) * m + np.sin(theta) * np.sin(phi) * n)


def moltemplate_lt() -> str:
    """The moltemplate input: one molecule inheriting OPLSAA (charges in the file are placeholders)."""
    atoms = paracetamol_atoms()
    lines = [f'import "{FORCE_FIELD_FILE}"', "", "Paracetamol inherits OPLSAA {", '  write("Data Atoms") {']
    for name, opls, pos in zip(NAMES, OPLS_TYPES, atoms.positions):
        lines.append(f"    $atom:{name} $mol:. @atom:{opls} 0.0 {pos[0]:.6f} {pos[1]:.6f} {pos[2]:.6f}")
    lines += ["  }", '  write("Data Bond List") {']
    for k, (i, j) in enumerate(BONDS):
        lines.append(f"    $bond:b{k + 1} $atom:{NAMES[i]} $atom:{NAMES[j]}")
    lines += ["  }", "}", "", "mol = new Paracetamol", "", 'write_once("Data Boundary") {',
              f"  {-BOX_HALF_A} {BOX_HALF_A} xlo xhi", f"  {-BOX_HALF_A} {BOX_HALF_A} ylo yhi",
              f"  {-BOX_HALF_A} {BOX_HALF_A} zlo zhi", "}", ""]
    return "\n".join(lines)


# --- moltemplate -------------------------------------------------------------------------------------------
_OUTPUTS = ("paracetamol.lt", "paracetamol.data", "paracetamol.in.init", "paracetamol.in.settings",
            "paracetamol.in.charges", "paracetamol.in", "moltemplate.log")


def moltemplate_files(dest: Path) -> Path:
    """Write the moltemplate inputs and outputs for paracetamol into `dest` (generated or from the cache)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        mt_version = version("moltemplate")
    except PackageNotFoundError:
        raise UserError("system 'paracetamol' needs moltemplate: pip install 'trajcast-dist[md]' "
                        "(or pip install moltemplate)") from None
    lt = moltemplate_lt()
    key = hashlib.sha256(f"moltemplate {mt_version}\n{lt}".encode()).hexdigest()[:16]
    cached = _cache_root() / "moltemplate" / f"paracetamol-{key}"
    if not all((cached / name).exists() for name in _OUTPUTS):
        _generate_into_cache(lt, mt_version, cached)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in _OUTPUTS:
        shutil.copyfile(cached / name, dest / name)
    return dest


def _cache_root() -> Path:
    if os.environ.get("TRAJCAST_DIST_CACHE"):
        return Path(os.environ["TRAJCAST_DIST_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trajcast-dist"


def _generate_into_cache(lt: str, mt_version: str, cached: Path) -> None:
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    scripts = [shutil.which(name, path=env["PATH"]) for name in ("moltemplate.sh", "cleanup_moltemplate.sh")]
    if None in scripts:
        raise UserError("moltemplate.sh / cleanup_moltemplate.sh not found on PATH; install moltemplate "
                        "(pip install 'trajcast-dist[md]') into this environment")
    with tempfile.TemporaryDirectory(prefix="trajcast-moltemplate-") as tmp:
        tmp = Path(tmp)
        (tmp / "paracetamol.lt").write_text(lt)
        log = [f"# moltemplate {mt_version}, generated by trajcast_dist.data.paracetamol", ""]
        # moltemplate writes paracetamol.{data,in,in.init,in.settings,in.charges}; cleanup_moltemplate.sh then
        # drops the ~990 OPLS atom types (and their bonded types) the molecule does not use, renumbering the rest.
        for command in ([scripts[0], "paracetamol.lt"], [scripts[1], "-base", "paracetamol"]):
            done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
            log += [f"$ {' '.join(Path(c).name if k == 0 else c for k, c in enumerate(command))}",
                    done.stdout, done.stderr]
            if done.returncode:
                raise UserError(f"{Path(command[0]).name} failed (exit {done.returncode}):\n"
                                + "\n".join((done.stdout + done.stderr).splitlines()[-20:]))
        (tmp / "moltemplate.log").write_text("\n".join(log))
        _check_moltemplate_output(tmp)
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=cached.name + ".", dir=cached.parent))
        for name in _OUTPUTS:
            shutil.copyfile(tmp / name, staging / name)
        try:
            os.rename(staging, cached)
        except OSError:  # another process filled the cache first
            shutil.rmtree(staging, ignore_errors=True)


def _check_moltemplate_output(folder: Path) -> None:
    """The data file must hold exactly the molecule we wrote (atoms in order, our bonds, OPLS charges sum to 0)."""
    header, atoms, bonds = _read_data(folder / "paracetamol.data")
    expected = {"atoms": 20, "bonds": 20, "atom types": 12}
    for key, value in expected.items():
        if header.get(key) != value:
            raise UserError(f"moltemplate output: {header.get(key)} {key}, expected {value}")
    if sorted(tuple(sorted(b)) for b in bonds.values()) != sorted(tuple(sorted(b)) for b in BONDS):
        raise UserError("moltemplate output: bond list differs from the paracetamol topology")
    charges = _type_charges(folder / "paracetamol.in.settings")
    total = sum(charges[t] for t in atoms.values())
    if abs(total) > 1e-6:
        raise UserError(f"moltemplate output: net charge {total:+.4f} e, expected 0 (atom types wrong?)")


def _read_data(path: Path):
    """(header counts, {atom index: type}, {bond type+index: (i, j)}) from a LAMMPS data file (0-based atoms)."""
    header, atoms, bonds, section = {}, {}, {}, None
    for raw in path.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) >= 2 and words[0].isdigit() and section is None and not words[1].replace(".", "").isdigit():
            header[" ".join(words[1:])] = int(words[0])
        elif words[0] in ("Masses", "Atoms", "Bonds", "Angles", "Dihedrals", "Impropers"):
            section = words[0]
        elif section == "Atoms":
            atoms[int(words[0]) - 1] = int(words[2])
        elif section == "Bonds":
            bonds[(int(words[1]), int(words[0]))] = (int(words[2]) - 1, int(words[3]) - 1)
    return header, atoms, bonds


def _type_charges(settings: Path) -> dict[int, float]:
    charges = {}
    for line in settings.read_text().splitlines():
        words = line.split("#")[0].split()
        if words[:2] == ["set", "type"] and words[3] == "charge":
            charges[int(words[2])] = float(words[4])
    return charges


def equilibrium_bond_lengths(folder: Path) -> dict[tuple[int, int], float]:
    """{(i, j): r0 in Å} of every bond (0-based atom indices) from moltemplate output in `folder`."""
    _, _, bonds = _read_data(folder / "paracetamol.data")
    r0 = {}
    for line in (folder / "paracetamol.in.settings").read_text().splitlines():
        words = line.split("#")[0].split()
        if words[:1] == ["bond_coeff"]:
            r0[int(words[1])] = float(words[3])
    return {pair: r0[bond_type] for (bond_type, _), pair in bonds.items()}


# --- LAMMPS -------------------------------------------------------------------------------------------------
def _build(session, workdir: Path, repeat, seed: int):
    if tuple(repeat) != (1, 1, 1):
        raise UserError("paracetamol is one molecule in vacuum (non-periodic); --repeat must be 1 1 1")
    folder = Path(workdir) / "moltemplate"
    if session.is_main:
        moltemplate_files(folder)
    session.comm.Barrier()
    _read(session, folder)
    session.command("minimize 1.0e-10 1.0e-10 10000 100000")
    session.command("reset_timestep 0")
    return NUMBERS.copy()


def _load(session, atoms: Atoms, workdir: Path):
    if len(atoms) != len(NUMBERS) or not np.array_equal(atoms.numbers, NUMBERS):
        raise UserError(f"paracetamol frames must hold the 20 atoms in the order of trajcast_dist.data.paracetamol "
                        f"({''.join(NAMES)}); got {atoms.get_chemical_formula()} in another order or size")
    folder = moltemplate_files(Path(workdir) / "moltemplate")  # every rank: workdir may be per-rank (rerun)
    _read(session, folder)
    return NUMBERS.copy()


def _read(session, folder: Path) -> None:
    settings = (folder / "paracetamol.in.settings").read_text().splitlines()
    charges = (folder / "paracetamol.in.charges").read_text().splitlines()
    init = (folder / "paracetamol.in.init").read_text()
    styles = ["bond_style harmonic", "angle_style harmonic", "dihedral_style opls", "improper_style cvff"]
    missing = [s for s in styles if s not in init]
    if missing:
        raise UserError(f"moltemplate's {FORCE_FIELD_FILE} no longer uses {missing}; update paracetamol.py")
    session.commands(["atom_style full", "boundary f f f", *styles,
                      f"pair_style lj/cut/coul/cut {CUTOFF_A}",
                      "pair_modify mix geometric",  # OPLS combining rule
                      "special_bonds lj/coul 0.0 0.0 0.5",  # OPLS 1-4 scaling
                      f"read_data {folder / 'paracetamol.data'}"])
    session.note(f"moltemplate force field ({folder.name}/paracetamol.in.settings, .in.charges) follows")
    session.commands(line.split("#")[0].strip() for line in settings + charges if line.split("#")[0].strip())
    # Temperature of an isolated molecule with zero net linear and angular momentum: 3N - 6 degrees of freedom.
    session.commands(["compute temp_mol all temp", "compute_modify temp_mol extra/dof 6",
                      "thermo_modify temp temp_mol", "neighbor 2.0 bin", "neigh_modify every 1 delay 0 check yes",
                      "timestep 0.5"])


def _equilibration(temperature_K: float, total_fs: float, seed: int):
    # Paper: Nosé–Hoover chain of 10, damping 5 fs, 25 ps (the default of --equilibrate-ps). Velocities start
    # with zero linear and angular momentum, which the Nosé–Hoover scaling keeps.
    t = temperature_K
    steps = int(round(total_fs / 0.5))
    return [Stage([f"velocity all create {t} {lammps_seed(seed)} mom yes rot yes dist gaussian loop geom temp temp_mol",
                   f"fix equil all nvt temp {t} {t} {NH_DAMP_FS} tchain {NH_CHAINS}",
                   "fix_modify equil temp temp_mol"], steps, ["equil"])]


PARACETAMOL = MDSystem(
    name="paracetamol", unit_style="real", timestep_fs=0.5,
    csvr_tau_fs=50.0,  # paper, "Paracetamol": "CSVr thermostat ... with a relaxation time of 50 fs"
    start_window_K=None, start_separation_fs=100.0, build=_build, equilibration=_equilibration, load=_load,
    start_energy_rel_tol=1e-3,  # paper: NVE starts with total energy within 0.1 % of the equilibration mean
    candidate_every_fs=1.0,  # only ~0.4 % of samples fall in that window: sample candidates densely
    periodic=False,
    # CSVR on 3N - 6 degrees of freedom, net linear and angular momentum removed every step (paper).
    csvr_commands=("fix_modify csvr temp temp_mol", "fix zero_momentum all momentum 1 linear 1 1 1 angular"),
    csvr_fixes=("zero_momentum",),
)
