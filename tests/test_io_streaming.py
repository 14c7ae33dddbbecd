"""Streaming extxyz reader/writer and the block-wise restart file: the same values as ASE (`ase.io.read` +
`state_from_atoms`, `state_to_atoms` + ASE's writer) and as `np.savez`, read and written a chunk at a time."""

import ase.io
import numpy as np
import pytest

from trajcast_dist.errors import UserError
from trajcast_dist.io.blocks import frame_header, state_blocks
from trajcast_dist.io.extxyz_reader import NotStreamable, open_extxyz, read_blocks, read_numbers
from trajcast_dist.io.extxyz_writer import ExtxyzFrameWriter
from trajcast_dist.io.restart import RestartReader, RestartWriter, load_restart
from trajcast_dist.io.structure import state_from_atoms
from trajcast_dist.io.trajectory import state_to_atoms
from trajcast_dist.structures import water_box
from helpers import ExtxyzWriter, save_restart, thermal_velocities

FIELDS = ("positions", "velocities", "numbers", "image", "ids")


@pytest.fixture
def moving_water():
    """A water box with thermal velocities, a few atoms in other periodic images, step and time set."""
    state = state_from_atoms(water_box(seed=1))
    state.velocities = thermal_velocities(state.numbers, 300.0, seed=2)
    state.image[::7] = [1, -2, 3]
    state.step, state.time_fs = 12, 60.0
    return state


def streamed(path, chunk=50, index=-1):
    frame = open_extxyz(path, index)
    blocks = list(read_blocks(frame, chunk))
    assert all(len(b) <= chunk for b in blocks)
    return frame, {name: np.concatenate([getattr(b, name) for b in blocks]) for name in FIELDS}


def assert_same_as_ase(path, index=-1, chunk=50):
    frame, arrays = streamed(path, chunk, index)
    reference = state_from_atoms(ase.io.read(path, index=index))
    for name in FIELDS:
        assert arrays[name].dtype == getattr(reference, name).dtype, name
        assert np.array_equal(arrays[name], getattr(reference, name)), name  # bit for bit
    header = frame.header()
    assert np.array_equal(header["cell"], reference.cell) and np.array_equal(header["pbc"], reference.pbc)
    assert (header["n_atoms"], header["step"], header["time_fs"]) == (reference.n_atoms, reference.step,
                                                                       reference.time_fs)
    return frame


def test_reader_matches_ase_on_our_trajectory_last_and_first_frame(moving_water, tmp_path):
    path = tmp_path / "traj.xyz"
    writer = ExtxyzWriter(path)
    writer.write(state_to_atoms(moving_water, 300.0))
    moving_water.step, moving_water.positions = 13, moving_water.positions + 0.01
    writer.write(state_to_atoms(moving_water, 301.0))
    writer.close()
    assert assert_same_as_ase(path).info["step"] == 13
    assert assert_same_as_ase(path, index=0, chunk=7).info["step"] == 12


@pytest.mark.parametrize("with_velocities", [True, False])
def test_reader_matches_ase_on_a_supercell(moving_water, tmp_path, with_velocities):
    from trajcast_dist.data.supercell import write_supercell  # what `trajcast-dist data supercell` runs

    base = tmp_path / "base.xyz"
    atoms = state_to_atoms(moving_water)
    if not with_velocities:
        del atoms.arrays["momenta"]
    ase.io.write(base, atoms, format="extxyz")
    frame = assert_same_as_ase(write_supercell(base, (2, 1, 2), tmp_path / "big.xyz"), chunk=100)
    assert frame.n_atoms == 4 * moving_water.n_atoms and frame.has_velocities == with_velocities


def test_reader_velocities_column_z_column_and_no_lattice(tmp_path):
    path = tmp_path / "other.xyz"
    path.write_text("3\nProperties=Z:I:1:pos:R:3:velocities:R:3 step=4\n"
                    "8 0.1 0.2 0.3 0.01 0.02 0.03\n1 1.1 0.2 0.3 -0.01 0.0 0.5\n1 0.1 1.2 0.3 0 0 0\n")
    frame = assert_same_as_ase(path, chunk=2)
    assert not frame.pbc.any() and frame.has_velocities
    assert read_numbers(frame, chunk=2).tolist() == [8, 1, 1]


def test_reader_errors_name_the_problem(tmp_path):
    cut = tmp_path / "cut.xyz"
    cut.write_text('2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3\nO 0 0 0\nH 1 0\n')
    with pytest.raises(UserError, match="atom 1: 3 columns"):
        list(read_blocks(open_extxyz(cut)))
    nan = tmp_path / "nan.xyz"
    nan.write_text('1\nLattice="5 0 0 0 5 0 0 0 5"\nO nan 0 0\n')
    with pytest.raises(UserError, match="NaN/inf positions"):
        list(read_blocks(open_extxyz(nan)))
    with pytest.raises(UserError, match="not found"):
        open_extxyz(tmp_path / "missing.xyz")
    vec = tmp_path / "vec.xyz"
    vec.write_text("1\n\nO 0 0 0\nVEC1 5 0 0\n")
    with pytest.raises(NotStreamable):
        open_extxyz(vec)


def test_writer_frames_read_back_like_ase_frames(moving_water, tmp_path):
    ours, theirs = tmp_path / "ours.xyz", tmp_path / "ase.xyz"
    writer, reference = ExtxyzFrameWriter(ours), ExtxyzWriter(theirs)
    for temperature in (290.5, None):
        writer.begin(frame_header(moving_water), temperature)
        for block in state_blocks(moving_water, 50):
            writer.add(block)
        writer.finish()
        reference.write(state_to_atoms(moving_water, temperature))
        moving_water.step += 1
    writer.close()
    reference.close()
    for mine, ase_frame in zip(ase.io.read(ours, index=":"), ase.io.read(theirs, index=":"), strict=True):
        assert mine.info == ase_frame.info
        assert np.array_equal(mine.cell.array, ase_frame.cell.array) and np.array_equal(mine.pbc, ase_frame.pbc)
        assert mine.get_chemical_symbols() == ase_frame.get_chemical_symbols()
        for name in ("positions", "momenta", "image"):
            np.testing.assert_allclose(mine.arrays[name], ase_frame.arrays[name], rtol=1e-12, atol=0)


def test_writer_refuses_rows_out_of_order(moving_water, tmp_path):
    writer = ExtxyzFrameWriter(tmp_path / "x.xyz").begin(frame_header(moving_water))
    blocks = list(state_blocks(moving_water, 50))
    with pytest.raises(RuntimeError, match="out of order"):
        writer.add(blocks[1])
    writer.close()


def test_restart_written_in_blocks_is_a_plain_npz(moving_water, tmp_path):
    path = tmp_path / "r.npz"
    writer = RestartWriter(path, frame_header(moving_water), {"state": 1}, {"seed": 3})
    for block in state_blocks(moving_water, 37):
        writer.add(block)
    writer.finish()
    assert [p.name for p in tmp_path.iterdir()] == ["r.npz"]  # parts and temporary file are gone
    with np.load(path) as data:
        for name in FIELDS:
            assert np.array_equal(data[name], getattr(moving_water, name))
    state, rng_state, settings = load_restart(path)
    assert (state.step, state.time_fs, rng_state, settings) == (12, 60.0, {"state": 1}, {"seed": 3})
    reader = RestartReader(path)
    blocks = list(reader.blocks(50))
    assert [len(b) for b in blocks] == [50, 50, 50, 42]
    for name in FIELDS:
        assert np.array_equal(np.concatenate([getattr(b, name) for b in blocks]), getattr(moving_water, name))
    assert reader.header()["n_atoms"] == moving_water.n_atoms and reader.settings == {"seed": 3}


def test_restart_reader_reads_files_of_the_previous_writer(moving_water, tmp_path):
    import json

    path, s = tmp_path / "old.npz", moving_water
    meta = {"format": "trajcast-dist-restart-1", "step": s.step, "time_fs": s.time_fs, "rng_state": {},
            "settings": {}}
    np.savez(path, positions=s.positions, velocities=s.velocities, numbers=s.numbers, cell=s.cell, pbc=s.pbc,
             image=s.image, ids=s.ids, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    blocks = list(RestartReader(path).blocks(100))
    assert np.array_equal(np.concatenate([b.positions for b in blocks]), s.positions)


def test_restart_writer_abort_leaves_the_old_file(moving_water, tmp_path):
    path = tmp_path / "r.npz"
    save_restart(path, moving_water, {}, {})
    before = path.read_bytes()
    writer = RestartWriter(path, frame_header(moving_water), {}, {})
    writer.add(next(state_blocks(moving_water, 10)))
    with pytest.raises(RuntimeError, match="expected 192"):
        writer.finish()  # too few atoms: refuses, and the previous restart stays in place
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["r.npz"]


def test_maxwell_boltzmann_draws_are_chunkable():
    """Why streaming draws would be possible at all: numpy's Generator yields the same normals in one (N, 3)
    call as in consecutive row chunks (the sums that follow are not, so the driver keeps the one-shot draw)."""
    whole = np.random.default_rng(7).standard_normal((1000, 3))
    rng = np.random.default_rng(7)
    assert np.array_equal(whole, np.concatenate([rng.standard_normal((n, 3)) for n in (1, 512, 487)]))
