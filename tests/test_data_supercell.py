"""`data supercell`: the streamed extxyz equals ASE's repeat, velocities included (issue 4)."""

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from trajcast_dist.data.supercell import write_supercell
from trajcast_dist.errors import UserError


def test_supercell_matches_ase_repeat_with_velocities(tmp_path):
    atoms = molecule("H2O", cell=[3.1, 3.2, 3.3], pbc=True)
    atoms.cell[1, 0] = 0.4  # triclinic
    atoms.set_velocities(np.random.default_rng(0).normal(size=(3, 3)))
    atoms.info["time_fs"] = 25.0
    ase.io.write(tmp_path / "w.xyz", atoms)
    write_supercell(tmp_path / "w.xyz", (2, 3, 1), tmp_path / "big.xyz")
    big, expected = ase.io.read(tmp_path / "big.xyz"), ase.io.read(tmp_path / "w.xyz").repeat((2, 3, 1))
    assert big.get_chemical_symbols() == expected.get_chemical_symbols()
    np.testing.assert_allclose(big.positions, expected.positions, atol=1e-9)
    np.testing.assert_allclose(big.get_velocities(), expected.get_velocities(), atol=1e-9)
    np.testing.assert_allclose(big.cell, expected.cell, atol=1e-9)
    assert big.info["time_fs"] == 25.0


def test_supercell_refuses_to_overwrite(tmp_path):
    ase.io.write(tmp_path / "w.xyz", molecule("H2O", cell=[3, 3, 3], pbc=True))
    (tmp_path / "big.xyz").write_text("keep")
    with pytest.raises(UserError, match="--overwrite"):
        write_supercell(tmp_path / "w.xyz", (2, 2, 2), tmp_path / "big.xyz")
    assert (tmp_path / "big.xyz").read_text() == "keep"
    with pytest.raises(UserError):
        write_supercell(tmp_path / "w.xyz", (0, 2, 2), tmp_path / "other.xyz")
