"""The program that `tests/test_parallel_equivalence.py` starts under `mpiexec -n P` (no tests here).

    mpiexec -n P python tests/mpi_worker.py trajectory CASES.npz MODEL.pt STEPS OUT.npz
    mpiexec -n P python tests/mpi_worker.py fault MODEL.pt CASES.npz

`trajectory`: for every system in CASES.npz, run the distributed driver STEPS steps and record, on rank 0, the
gathered positions and velocities after every step (the gather checks that each id is owned exactly once), the
ghost count of every rank against a direct numpy count, and how many atoms migrated or crossed the periodic seam.
`fault`: rank 1 raises in the middle of step 3, inside the halo exchange, while the other ranks wait on it.
"""

import sys

import numpy as np


def numpy_ghost_counts(positions, cell, grid, cutoff_A):
    """Per subdomain: periodic images within r_c/h_d (fractional) of its box, minus its own atoms."""
    from trajcast_dist.parallel.domain import perpendicular_widths

    s = np.asarray(positions) @ np.linalg.inv(cell)
    reach = cutoff_A / perpendicular_widths(cell)
    grid = np.array(grid)
    images = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T
    shifted = s[None, :, :] + images[:, None, :]  # (27, N, 3)
    counts = []
    for coords in np.ndindex(*grid):
        lo, hi = np.array(coords) / grid, (np.array(coords) + 1) / grid
        inside = ((shifted >= lo - reach) & (shifted < hi + reach)).all(-1).sum()
        owned = ((s >= lo) & (s < hi)).all(-1).sum()
        counts.append(int(inside - owned))
    return np.array(counts)


def _load(model_path):
    import torch

    from trajcast_dist.io.checkpoint import load_model

    torch.set_num_threads(1)
    model, _ = load_model(model_path, dtype=torch.float64)
    return model


def _state(cases, name):
    from trajcast_dist.dynamics.state import SystemState

    return SystemState(positions=cases[f"{name}/positions"], velocities=cases[f"{name}/velocities"],
                       numbers=cases[f"{name}/numbers"], cell=cases[f"{name}/cell"], pbc=np.ones(3, bool))


def _scatter(model, state, settings, rng, world):
    """A distributed driver of the `state` every rank built (rank 0's copy is the one scattered)."""
    from trajcast_dist.forecast import make_step_settings
    from trajcast_dist.io.blocks import frame_header, state_blocks
    from trajcast_dist.parallel.driver import distributed_driver

    main = world.rank == 0
    return distributed_driver(model, world.bcast(frame_header(state) if main else None, root=0),
                              state_blocks(state) if main else None,
                              make_step_settings(model, state.n_atoms, state.periodic, settings), rng, world)


def trajectory(cases_path, model_path, steps, out_path):
    from mpi4py import MPI

    from trajcast_dist.forecast import ForecastSettings

    from helpers import gather

    world = MPI.COMM_WORLD
    model = _load(model_path)
    cases = np.load(cases_path)
    names = [str(n) for n in cases["names"]]
    results = {}
    for name in names:
        state = _state(cases, name)
        settings = ForecastSettings(seed=7)
        rng = np.random.default_rng(settings.seed)
        driver = _scatter(model, state, settings, rng, world)
        positions, velocities, ghosts, expected, migrated, seam = [], [], [], [], [], []
        before = gather(driver)
        for _ in range(steps):
            owned_before = set(driver.atoms.ids.tolist())
            driver.step()
            arrived = len(set(driver.atoms.ids.tolist()) - owned_before)
            ghosts.append(world.gather(driver.halo.comm.n_ghost, root=0))
            migrated.append(world.reduce(arrived, op=MPI.SUM, root=0))
            after = gather(driver)  # raises unless every id is owned by exactly one rank
            if world.rank == 0:
                expected.append(numpy_ghost_counts(before.positions, before.cell, driver.halo.domain.grid,
                                                   model.cutoff_A))
                seam.append(int((after.image != before.image).any(axis=1).sum()))
                positions.append(after.positions)
                velocities.append(after.velocities)
                before = after
        owned_counts = world.gather(len(driver.atoms), root=0)
        if world.rank == 0:
            results.update({f"{name}/positions": np.array(positions), f"{name}/velocities": np.array(velocities),
                            f"{name}/ghosts": np.array(ghosts), f"{name}/expected_ghosts": np.array(expected),
                            f"{name}/migrated": np.array(migrated), f"{name}/seam": np.array(seam),
                            f"{name}/grid": np.array(driver.halo.domain.grid),
                            f"{name}/owned_counts": np.array(owned_counts)})
    if world.rank == 0:
        np.savez(out_path, **results)


def fault(model_path, cases_path):
    from mpi4py import MPI

    from trajcast_dist.forecast import ForecastSettings
    from trajcast_dist.parallel.driver import guarded

    world = MPI.COMM_WORLD
    model = _load(model_path)
    cases = np.load(cases_path)
    state = _state(cases, str(cases["names"][0]))
    settings = ForecastSettings()

    def run():
        driver = _scatter(model, state, settings, np.random.default_rng(0), world)
        sync = driver.halo.sync

        def failing_sync(h, layer):
            if world.rank == 1 and driver.step_count == 2 and layer == 1:
                raise RuntimeError("injected failure on rank 1")
            return sync(h, layer)

        driver.halo.sync = failing_sync
        for _ in range(10):
            driver.step()
        return 0

    return guarded(run, world)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "trajectory":
        trajectory(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif mode == "fault":
        sys.exit(fault(sys.argv[2], sys.argv[3]))
