"""The distributed forecast driver and `mpirun -n P trajcast-dist-forecast ...`.

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

from trajcast_dist import units
from trajcast_dist.dynamics.rollout import check_overlaps, kinetic_temperature
from trajcast_dist.dynamics.state import wrap_positions
from trajcast_dist.dynamics.step import Instability, StepSettings, propagate
from trajcast_dist.errors import UserError
from trajcast_dist.forecast import append_options, make_step_settings, run_forecast
from trajcast_dist.forecast_run import header_line, open_model, prepare
from trajcast_dist.graph import build_graph
from trajcast_dist.parallel.atoms import LocalAtoms
from trajcast_dist.parallel.comm import Comm, MPIReducer
from trajcast_dist.parallel.domain import Domain
from trajcast_dist.parallel.scatter import AgreedError, gather_atoms, scatter_blocks
from trajcast_dist.runtime import DTYPES

__all__ = ["AgreedError", "DistributedDriver", "agree", "guarded", "run_distributed"]

PROG = "trajcast-dist forecast"


class DistributedDriver:
    """Advances the atoms this rank owns; same interface as `SerialDriver` for `run_forecast`."""

    def __init__(self, model, atoms: LocalAtoms, header: dict, domain: Domain, comm: Comm,
                 settings: StepSettings, rng: np.random.Generator, dtype=torch.float64, device="cpu"):
        self.model, self.atoms, self.domain, self.comm = model, atoms, domain, comm
        self.settings, self.rng, self.dtype, self.device = settings, rng, dtype, device
        self.header = dict(header)
        self.reducer = MPIReducer(comm.world)
        self.is_main = self.reducer.is_main
        self.timers = {"borders": 0.0, "graph": 0.0, "model": 0.0, "exchange": 0.0}
        self._steps_since_stats = 0
        self._max_ghost = 0
        self._stats = {}

    @classmethod
    def from_blocks(cls, model, header: dict, blocks, settings: StepSettings, rng, world, grid=None,
                    dtype=torch.float64, device="cpu", cuda_aware: bool = False) -> "DistributedDriver":
        """Scatter the atoms rank 0 reads block by block (`blocks` is None on other ranks; `header` is known
        everywhere), so no rank ever holds the whole input."""
        domain = agree(world, lambda: Domain.create(header["cell"], header["pbc"], world.size, model.cutoff_A,
                                                    grid))
        atoms = scatter_blocks(world, domain, blocks, header["n_atoms"])
        return cls(model, atoms, header, domain, Comm(domain, world, device, cuda_aware), settings, rng, dtype,
                   device)

    @property
    def step_count(self) -> int:
        return self.header["step"]

    def step(self) -> float:
        """One Δt for the whole system (collective); returns the global temperature after the thermostat."""
        clock = time.perf_counter()
        rows = self.comm.borders(self.atoms)
        self._max_ghost = max(self._max_ghost, self.comm.n_ghost)
        tick = self._lap("borders", clock)
        numbers = np.rint(rows[:, 6]).astype(np.int64)
        graph = build_graph(rows[:, :3], rows[:, 3:6], self.model.species_index(numbers), units.masses_amu(numbers),
                            self.header["cell"], False, self.model.cutoff_A, n_owned=len(self.atoms),
                            dtype=self.dtype, device=self.device)
        tick = self._lap("graph", tick)
        displacement, velocities, temperature = propagate(self.model, graph, self.settings, self.reducer, self.rng,
                                                          self.step_count + 1, self.atoms.ids, sync=self.comm.sync)
        tick = self._lap("model", tick)
        atoms = self.atoms
        atoms.positions, atoms.image = wrap_positions(atoms.positions + displacement, atoms.image,
                                                      self.header["cell"], self.header["pbc"])
        atoms.velocities = velocities
        self.atoms = self.comm.exchange(atoms)
        self._lap("exchange", tick)
        self.header["step"] += 1
        self.header["time_fs"] += self.model.dt_fs
        self._steps_since_stats += 1
        return temperature

    def snapshot(self):
        """(header, blocks) of the current state for output sinks; collective. `blocks` yields the atoms in
        id order a chunk at a time on rank 0 (None elsewhere); every rank must exhaust it or none may start
        it. Also refreshes the log statistics."""
        self._stats = self._collect_stats()
        return dict(self.header), gather_atoms(self.comm.world, self.atoms, self.header["n_atoms"])

    def temperature(self) -> float:
        """Kinetic temperature of the whole system (Allreduce of the owned atoms' kinetic energies)."""
        return kinetic_temperature(self.reducer, self.atoms.numbers, self.atoms.velocities, self.header["n_atoms"],
                                   bool(self.header["pbc"].any()))

    def result(self):
        """What `run_forecast` returns: nothing, as no rank holds the whole final state."""
        return None

    def check_overlaps(self, where: str) -> None:
        """`check_overlaps` of the atoms this rank owns against its owned and ghost atoms (collective)."""
        rows = self.comm.borders(self.atoms)
        check_overlaps(rows[:, :3], rows[:, 6], rows[:, 7], self.header["cell"], False, where, len(self.atoms))

    def shift_velocities(self, shift: np.ndarray | None) -> None:
        """Subtract a velocity common to all atoms (the input's net drift, measured while it was read)."""
        if shift is not None:
            self.atoms.velocities = self.atoms.velocities - np.asarray(shift, dtype=np.float64)

    def stats(self) -> dict:
        return self._stats

    def _lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timers[name] += now - since
        return now

    def _collect_stats(self) -> dict:
        from mpi4py import MPI

        world = self.comm.world
        traffic = self.comm.reset_traffic()
        n, g = len(self.atoms), self.comm.n_ghost
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
    driver = DistributedDriver.from_blocks(model, header, source.blocks if main else None, step, rng, world,
                                           job.grid, DTYPES[settings.dtype], device, job.cuda_aware)
    driver.shift_velocities(world.bcast(source.velocity_shift() if main else None, root=0))
    agree(world, lambda: driver.check_overlaps(job.restart or job.structure))
    continuation = agree(world, lambda: append_options(restart) if job.append else {}, root_only=True)
    del source, restart
    on_root.clear()  # rank 0 keeps only its own atoms from here on
    output, restart_out = outputs
    log = (lambda line: print(line, flush=True)) if main else None  # noqa: E731
    if log:
        log(header_line(n_atoms, model, settings, device, f"{world.size} processes, {driver.domain.describe()}"))
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

