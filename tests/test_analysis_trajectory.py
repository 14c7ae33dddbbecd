"""Streaming reader: continuous unwrapped trajectories with an image array and by minimum image, time axis."""

import ase.io
import numpy as np
import pytest
from ase import Atoms

from trajcast_dist import units
from trajcast_dist.analysis.trajectory import iter_frames
from trajcast_dist.errors import UserError

TRICLINIC = np.array([[8.0, 0.0, 0.0], [3.0, 7.0, 0.0], [-1.5, 2.0, 6.5]])


def drifting_frames(n_frames=60, with_image=True, dt_fs=5.0, seed=0):
    """Atoms drifting ~1 Å per frame through a triclinic cell: they cross every face several times."""
    rng = np.random.default_rng(seed)
    start = rng.random((4, 3)) @ TRICLINIC
    velocity = rng.normal(scale=0.2, size=(4, 3))   # Å/fs
    truth, frames = [], []
    for k in range(n_frames):
        r = start + velocity * k * dt_fs
        frac = np.linalg.solve(TRICLINIC.T, r.T).T
        image = np.floor(frac).astype(int)
        atoms = Atoms("H2O2", positions=(frac - image) @ TRICLINIC, cell=TRICLINIC, pbc=True)
        atoms.set_velocities(units.velocities_to_ase(velocity))
        if with_image:
            atoms.arrays["image"] = image
        atoms.info["time_fs"] = k * dt_fs
        truth.append(r)
        frames.append(atoms)
    return frames, np.array(truth), velocity


@pytest.mark.parametrize("with_image", [True, False])
def test_unwrapping_across_boundaries_gives_continuous_trajectory(tmp_path, with_image):
    frames, truth, velocity = drifting_frames(with_image=with_image)
    assert np.ptp(truth[:, :, 0]) > 2 * TRICLINIC[0, 0]   # really crosses the cell several times
    path = tmp_path / "traj.xyz"
    ase.io.write(path, frames, format="extxyz")
    read = list(iter_frames(path, progress=False))
    unwrapped = np.array([f.unwrapped_A for f in read])
    np.testing.assert_allclose(unwrapped - unwrapped[0], truth - truth[0], atol=1e-5)
    np.testing.assert_allclose(read[3].velocities_A_per_fs, velocity, rtol=1e-6)
    assert [f.time_fs for f in read[:3]] == [0.0, 5.0, 10.0]


def test_skip_and_stride_select_frames_but_keep_unwrapping(tmp_path):
    frames, truth, _ = drifting_frames(with_image=False)
    path = tmp_path / "traj.xyz"
    ase.io.write(path, frames, format="extxyz")
    read = list(iter_frames(path, skip_ps=0.05, stride=3, progress=False))
    assert [f.time_fs for f in read[:3]] == [50.0, 65.0, 80.0]
    np.testing.assert_allclose(read[-1].unwrapped_A - read[0].unwrapped_A,
                               truth[int(read[-1].time_fs / 5)] - truth[10], atol=1e-5)


def test_missing_time_needs_dt_fs(tmp_path):
    frames, _, _ = drifting_frames(n_frames=3)
    for atoms in frames:
        del atoms.info["time_fs"]
    path = tmp_path / "traj.xyz"
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(UserError, match="--dt-fs"):
        list(iter_frames(path, progress=False))
    assert [f.time_fs for f in iter_frames(path, dt_fs=2.0, progress=False)] == [0.0, 2.0, 4.0]


def test_duplicated_frame_from_restart_is_a_user_error(tmp_path):
    frames, _, _ = drifting_frames(n_frames=5)
    path = tmp_path / "traj.xyz"
    ase.io.write(path, frames[:3] + frames[2:], format="extxyz")
    with pytest.raises(UserError, match="uniform"):
        list(iter_frames(path, progress=False))
