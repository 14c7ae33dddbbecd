"""The halo of one rank of a distributed forecast (`GhostHalo`: `dynamics.rollout.Driver` runs the step) and
`mpirun -n P trajcast-dist-forecast ...`.

Each step on every rank: `borders()` (ghosts) → graph of owned + ghost atoms (edges with owned receivers) →
the serial model with `forward_comm` as its `sync` hook and an MPI reducer → positions wrapped →
`exchange()` (migration). Rank logic stays here and in `Comm`; the model and `propagate` are the serial ones.

Faults: errors every rank raises together (bad input read on rank 0 and broadcast, a too-small box, an
instability agreed through the reducer) end all ranks with one message and exit status 2; anything raised on
one rank alone is printed there and ends the job with `MPI_Abort`, so no rank waits forever.
"""

import os
import signal
import sys
import time
import traceback

import numpy as np
import torch

from trajcast_dist.dynamics.rollout import Driver, check_overlaps
from trajcast_dist.dynamics.step import Instability, StepSettings
from trajcast_dist.errors import UserError
from trajcast_dist.forecast import append_options, make_step_settings, run_forecast
from trajcast_dist.forecast_run import header_line, open_model, prepare
from trajcast_dist.parallel.atoms import LocalAtoms
from trajcast_dist.parallel.comm import Comm, MPIReducer
from trajcast_dist.parallel.domain import Domain
from trajcast_dist.parallel.scatter import AgreedError, gather_atoms, scatter_blocks
from trajcast_dist.runtime import DTYPES

__all__ = ["AgreedError", "GhostHalo", "distributed_driver", "agree", "guarded", "run_distributed"]

PROG = "trajcast-dist forecast"


class GhostHalo:
    """What one rank of P sees around the atoms it owns (the `LocalHalo` of a distributed run): ghost atoms
    within a cutoff of its subdomain (`Comm.borders`), their features refreshed after every layer (`Comm.sync`),
    atoms migrated to their new owner after each step (`Comm.exchange`), sums over all ranks (`MPIReducer`)."""

    def __init__(self, domain: Domain, comm: Comm):
        self.domain, self.comm = domain, comm
        self.reducer = MPIReducer(comm.world)
        self.sync = comm.sync
        self._steps_since_stats = 0

    def borders(self, atoms: LocalAtoms) -> tuple:
        """(positions, velocities, atomic numbers, pbc, owned rows) of the graph's nodes: owned atoms, then
        ghosts at their image-shifted positions (so the graph needs no periodic images of its own)."""
        rows = self.comm.borders(atoms)
        return rows[:, :3], rows[:, 3:6], np.rint(rows[:, 6]).astype(np.int64), False, len(atoms)

    def exchange(self, atoms: LocalAtoms) -> LocalAtoms:
        self._steps_since_stats += 1
        return self.comm.exchange(atoms)

    def gather(self, atoms: LocalAtoms, n_atoms: int):
        """The atoms in id order a chunk at a time on rank 0 (None elsewhere); collective."""
        return gather_atoms(self.comm.world, atoms, n_atoms)

    def whole(self, atoms, header: dict) -> None:
        """No rank holds the whole state."""
        return None

    def stats(self, atoms: LocalAtoms) -> dict:
        """Balance and traffic since the last call, over all ranks (collective)."""
        from mpi4py import MPI

        world = self.comm.world
        traffic = self.comm.reset_traffic()
        n, g = len(atoms), self.comm.n_ghost
        extremes = np.array([n, -n, g, -g], dtype=np.int64)
        world.Allreduce(MPI.IN_PLACE, extremes, op=MPI.MAX)
        sent = np.array([sum(traffic.bytes.values()), traffic.bytes["forward"], sum(traffic.messages.values())],
                        dtype=np.int64)
        world.Allreduce(MPI.IN_PLACE, sent, op=MPI.SUM)
        steps = max(1, self._steps_since_stats)
        self._steps_since_stats = 0
        return {"ranks": world.size, "atoms/rank": f"{-extremes[1]}-{extremes[0]}",
                "ghosts/rank": f"{-extremes[3]}-{extremes[2]}", "halo_kB/step": f"{sent[0] / steps / 1e3:.1f}",
                "msgs/step": f"{sent[2] / steps:.0f}"}


def distributed_driver(model, header: dict, blocks, settings: StepSettings, rng, world, grid=None,
                       dtype=torch.float64, device="cpu", cuda_aware: bool = False) -> Driver:
    """The driver of this rank's atoms, scattered from the blocks rank 0 reads (`blocks` is None on other ranks;
    `header` is known everywhere), so no rank ever holds the whole input."""
    domain = agree(world, lambda: Domain.create(header["cell"], header["pbc"], world.size, model.cutoff_A, grid))
    atoms = scatter_blocks(world, domain, blocks, header["n_atoms"])
    halo = GhostHalo(domain, Comm(domain, world, device, cuda_aware))
    return Driver(model, atoms, header, halo, settings, rng, dtype, device)


def check_owned_overlaps(driver: Driver, where: str) -> None:
    """`check_overlaps` of the atoms this rank owns against its owned and ghost atoms (collective)."""
    rows = driver.halo.comm.borders(driver.atoms)
    check_overlaps(rows[:, :3], rows[:, 6], rows[:, 7], driver.header["cell"], False, where, len(driver.atoms))


def run_distributed(job) -> int:
    """`mpirun -n P trajcast-dist-forecast ...`: same `ForecastJob` and files as the serial run."""
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    if world.rank != 0:
        # Ctrl-C reaches every rank; rank 0 alone answers it (one line, see `_interrupted`). A rank interrupted
        # first would end the job while rank 0 waits inside a collective, and its line would be lost.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return guarded(lambda: _forecast(job, world), world)


def guarded(func, world):
    """Run func on every rank. Agreed errors: rank 0 re-raises (one message, exit 2), others return 2.
    Anything else: print on the failing rank and MPI_Abort, which ends every rank of the job."""
    try:
        return func()
    except (AgreedError, Instability) as err:
        if world.rank == 0:
            raise UserError(str(err)) from None
        return 2
    except UserError as err:
        _abort(world, f"{PROG}: error on rank {world.rank}: {err}", 2)
    except KeyboardInterrupt:
        _interrupted(world)
    except BaseException as err:  # noqa: BLE001 — an exception on one rank must end all of them
        detail = traceback.format_exc()
        _abort(world, f"{detail}{PROG}: error on rank {world.rank}: {type(err).__name__}: {err}", 1)


def agree(world, func, root_only: bool = False):
    """Run func on every rank (or on rank 0 only, broadcasting its result); if any rank raised a UserError,
    every rank raises the same AgreedError (the first failing rank's message)."""
    result, message = None, None
    if world.rank == 0 or not root_only:
        try:
            result = func()
        except UserError as err:
            message = str(err)
    messages = world.allgather(message)
    failed = [m for m in messages if m is not None]
    if failed:
        raise AgreedError(failed[0])
    return world.bcast(result, root=0) if root_only else result


def _forecast(job, world) -> int:
    from mpi4py import MPI

    from trajcast_dist.io.restart import check_model
    from trajcast_dist.launch import local_rank

    main = world.rank == 0
    _serial_ase()
    on_root = {}
    settings, outputs, model_file = agree(world, lambda: _prepare_on_root(job, on_root), root_only=True)
    ranks_per_node = world.Split_type(MPI.COMM_TYPE_SHARED).size
    device, model, record = agree(world, lambda: open_model(job, settings.dtype, model_file, ranks_per_node,
                                                            local_rank()))
    restart = on_root.get("restart")
    if job.restart:
        agree(world, lambda: check_model(job.restart, restart.meta.get("model"), record), root_only=True)
    rng = np.random.default_rng(settings.seed)
    source = _open_on_root(job, model, settings, rng, restart) if main else None
    failed = world.bcast(source if isinstance(source, str) else None, root=0)
    if failed:
        raise AgreedError(failed)
    rng.bit_generator.state = world.bcast(rng.bit_generator.state if main else None, root=0)
    header = world.bcast(source.header if main else None, root=0)
    n_atoms, periodic = header["n_atoms"], bool(header["pbc"].any())
    step = make_step_settings(model, n_atoms, periodic, settings)
    driver = distributed_driver(model, header, source.blocks if main else None, step, rng, world, job.grid,
                                DTYPES[settings.dtype], device, job.cuda_aware)
    shift = world.bcast(source.velocity_shift() if main else None, root=0)  # the input's net drift, seen as read
    if shift is not None:
        driver.atoms.velocities = driver.atoms.velocities - np.asarray(shift, dtype=np.float64)
    agree(world, lambda: check_owned_overlaps(driver, job.restart or job.structure))
    continuation = agree(world, lambda: append_options(restart) if job.append else {}, root_only=True)
    del source, restart
    on_root.clear()  # rank 0 keeps only its own atoms from here on
    output, restart_out = outputs
    log = (lambda line: print(line, flush=True)) if main else None  # noqa: E731
    if log:
        log(header_line(n_atoms, model, settings, device, f"{world.size} processes, {driver.halo.domain.describe()}"))
    run_forecast(driver, job.steps, settings, output=output, restart_path=restart_out, log=log, progress=False,
                 model_record=record, **continuation)
    if log:
        log(f"# wrote {output} and {restart_out}")
    return 0


def _prepare_on_root(job, on_root: dict):
    """Rank 0 only: (settings, outputs, model file); the restart reader stays on rank 0 (its atoms are streamed
    to their owners later)."""
    setup = prepare(job)
    on_root["restart"] = setup.restart
    return setup.settings, (setup.output, setup.restart_out), setup.model_file


def _open_on_root(job, model, settings, rng, restart):
    """Rank 0 opens the input for streaming (see `parallel.source`); returns it or an error message to
    broadcast."""
    from trajcast_dist.parallel.source import open_restart, open_structure

    try:
        if restart:
            return open_restart(restart, model, rng)
        return open_structure(job.structure, model, settings, rng)
    except UserError as err:
        return str(err)


def _serial_ase() -> None:
    """ASE broadcasts the result of `ase.io.read` (and synchronises writes) over MPI_COMM_WORLD when it runs
    under MPI; here only rank 0 reads and writes, so ASE must behave as in a single process."""
    import ase.parallel

    ase.parallel.world = ase.parallel.DummyMPI()


def _interrupted(world):
    """Ctrl-C on rank 0: one line and exit status 130, as for one process. No collective and no MPI_Finalize
    (the other ranks are somewhere else in the step): the process ends here, and with it the job."""
    print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)


def _abort(world, message: str, code: int):
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    # The launcher relays each rank's stderr asynchronously and MPI_Abort kills its relays: on a loaded machine the
    # message was lost (seen with mpich's hydra, 4 ranks on 2 busy cores). A moment's wait lets it through.
    time.sleep(0.5)
    world.Abort(code)

