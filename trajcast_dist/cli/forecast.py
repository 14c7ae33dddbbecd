"""`trajcast-dist forecast STRUCTURE --model M --steps N ...` (also `trajcast-dist-forecast`, and under mpirun)."""

import os
import sys
from pathlib import Path

import numpy as np
import torch

from trajcast_dist.errors import UserError
from trajcast_dist.forecast import (DTYPES, ForecastSettings, append_options, initial_state, make_step_settings,
                                    model_path, run_forecast)

__all__ = ["add_arguments", "run"]

_DEFAULTS = dict(temperature=300.0, tau=50.0, seed=0, stride=10, dtype="float64")


def add_arguments(parser) -> None:
    parser.add_argument("structure", nargs="?", help="input structure, any ASE format (velocities used if present)")
    parser.add_argument("--model", help="model file (.pt); default: the shipped default model")
    parser.add_argument("--steps", type=int, required=True, help="number of model steps (each Δt of the model)")
    parser.add_argument("--temperature", type=float, help="target temperature in K (default 300)")
    parser.add_argument("--tau", type=float, help="thermostat relaxation time in fs (default 50)")
    parser.add_argument("--thermostat", choices=("csvr", "langevin"),
                        help="csvr (default, the paper's): global velocity rescaling; langevin: per atom, holds "
                             "each element at T (use a longer --tau, e.g. 100–500 fs, to disturb diffusion less)")
    parser.add_argument("--nve", action="store_true", help="no thermostat (microcanonical)")
    parser.add_argument("--seed", type=int, help="seed for initial velocities and the thermostat (default 0)")
    parser.add_argument("--output", default="forecast.xyz", help="extxyz trajectory (default forecast.xyz)")
    parser.add_argument("--stride", type=int, help="write a frame and a log line every K steps (default 10)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="float64 (default) or float32")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    parser.add_argument("--backend", choices=["e3nn", "cueq", "auto"], default="auto",
                        help="tensor-product backend: e3nn (reference), cueq (cuEquivariance), auto (default: "
                             "cueq on a GPU, e3nn on CPU); same weights either way")
    path = parser.add_mutually_exclusive_group()
    path.add_argument("--fast", "--tabulate", dest="fast", action="store_true", default=True,
                      help="fast inference (the default): tabulated MLP weights and grouped tensor products, the "
                           "edge one in a fused kernel on CPU; ≤ 1e-9 relative to the exact path in float64")
    path.add_argument("--exact", dest="fast", action="store_false",
                      help="the exact reference path (e3nn tensor products, MLPs evaluated per edge)")
    parser.add_argument("--restart", help="continue from this restart file (STRUCTURE not needed)")
    parser.add_argument("--restart-out", help="restart file to write (default OUTPUT.restart.npz)")
    parser.add_argument("--append", action="store_true",
                        help="with --restart: continue the trajectory without repeating the restart's frame, in "
                             "OUTPUT (the run's own file: a frame a killed run left behind is cut off first) or a "
                             "new file, so `cat` of the two is one trajectory")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--max-temperature-factor", type=float, default=3.0,
                        help="stop when T exceeds this multiple of the target (default 3)")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads per process (default: $OMP_NUM_THREADS if set, else cores / ranks)")
    parser.add_argument("--grid", help="distributed: processor grid PxxPyxPz, e.g. 2x2x1 (default: automatic)")
    parser.add_argument("--cuda-aware", action="store_true",
                        help="distributed on GPU: give device buffers to MPI directly (needs CUDA-aware MPI); "
                             "default: halos staged through pinned host memory")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from trajcast_dist.parallel.launch import world_size

    if world_size() > 1:
        from trajcast_dist.parallel.driver import run_distributed
        return run_distributed(args)
    return run_serial(args)


def run_serial(args) -> int:
    from trajcast_dist.io.restart import RestartReader, check_model, load_restart
    from trajcast_dist.io.structure import read_structure

    restart = RestartReader(args.restart) if args.restart else None
    settings = resolve_settings(args, restart.settings if restart else None)
    set_threads(args.threads, 1)
    device = resolve_device(args.device, local_rank=0)
    output, restart_out = resolve_outputs(args)
    model, record = load_forecast_model(model_path(args.model, restart), settings.dtype, device,
                                        backend=args.backend, fast=args.fast)
    rng = np.random.default_rng(settings.seed)
    if restart:
        check_model(args.restart, restart.meta.get("model"), record)
        state, rng.bit_generator.state, _ = load_restart(args.restart)
    else:
        atoms = read_structure(args.structure)
        state = initial_state(atoms, model, settings, rng, where=str(args.structure))
    continuation = append_options(restart) if args.append else {}
    from trajcast_dist.dynamics.rollout import SerialDriver

    driver = SerialDriver(model, state, make_step_settings(model, state, settings), rng, DTYPES[settings.dtype],
                          device)
    log = lambda line: print(line, flush=True)  # noqa: E731
    log(f"# trajcast-dist forecast: {state.n_atoms} atoms, Δt={model.dt_fs} fs, "
        f"{settings.describe()}, "
        f"{settings.dtype}, device={device}, path {inference_path(model, device)}, 1 process")
    run_forecast(driver, args.steps, settings, output=output, restart_path=restart_out, log=log,
                 progress=not args.quiet, model_record=record, **continuation)
    log(f"# wrote {output} and {restart_out}")
    return 0


def resolve_settings(args, stored: dict | None = None) -> ForecastSettings:
    """Flags, else the settings stored in the restart file being continued, else defaults."""
    if not args.restart and not args.structure:
        raise UserError("give a STRUCTURE file to forecast (or --restart FILE to continue a run)")
    stored = stored or {}
    pick = lambda flag, key, default: flag if flag is not None else stored.get(key, default)  # noqa: E731
    settings = ForecastSettings(temperature_K=pick(args.temperature, "temperature_K", _DEFAULTS["temperature"]),
                                tau_fs=pick(args.tau, "tau_fs", _DEFAULTS["tau"]),
                                nve=args.nve or bool(stored.get("nve", False)),
                                thermostat=pick(args.thermostat, "thermostat", "csvr"),
                                seed=pick(args.seed, "seed", _DEFAULTS["seed"]),
                                stride=pick(args.stride, "stride", _DEFAULTS["stride"]),
                                dtype=pick(args.dtype, "dtype", _DEFAULTS["dtype"]),
                                max_temperature_factor=args.max_temperature_factor)
    settings.validate()
    if args.steps <= 0:
        raise UserError(f"--steps {args.steps} must be > 0")
    if args.threads is not None and args.threads <= 0:
        raise UserError(f"--threads {args.threads} must be > 0")
    return settings


def resolve_outputs(args):
    """(trajectory, restart file) after the checks: distinct files, writable, nothing replaced without
    --overwrite (--append continues an existing trajectory; continuing in place updates the restart)."""
    from trajcast_dist.io.atomic import check_distinct, check_writable

    if args.append and not args.restart:
        raise UserError("--append continues a run: give --restart FILE too")
    output = Path(args.output)
    restart_out = Path(args.restart_out or f"{output}.restart.npz")
    check_distinct({"--output": output, "--restart-out": restart_out})
    check_distinct({"--output": output, "--restart": args.restart})
    in_place = bool(args.restart) and Path(args.restart).resolve() == restart_out.resolve()
    return (check_writable(output, args.overwrite or args.append),
            check_writable(restart_out, args.overwrite or in_place, "restart file"))


def load_forecast_model(path, dtype: str, device, backend: str = "auto", fast: bool = False):
    """(model, its identity record) from a model file (see `io.checkpoint.model_record`)."""
    from trajcast_dist.io.checkpoint import load_model, model_record
    from trajcast_dist.model.backends import resolve_backend

    model, meta = load_model(path, dtype=DTYPES[dtype], device=device, backend=resolve_backend(backend, device))
    if fast and torch.device(device).type == "cpu":
        from trajcast_dist.model import cpu_kernel
        from trajcast_dist.parallel.launch import local_rank

        if cpu_kernel.needs_build() and local_rank() == 0:
            print("trajcast-dist: compiling the fused CPU kernel on first use (≈ 30 s, cached afterwards)",
                  file=sys.stderr, flush=True)
        cpu_kernel.edge_kernel()  # now, before any frame is written: a run killed mid-load leaves a build lock
    return (model.use_fast_inference() if fast else model), model_record(path, meta)


def inference_path(model, device) -> str:
    """For the log header: which path runs, and on CPU whether the fused edge kernel does."""
    if not model.fast:
        return "exact (e3nn tensor products)"
    if torch.device(device).type != "cpu":
        return "fast (tabulated MLPs, grouped tensor products)"
    from trajcast_dist.model import cpu_kernel

    kernel = "fused CPU kernel" if model.layers[0].edge_tp.uses_cpu_kernel(torch.zeros(1)) else (
        f"torch edge product: kernel {cpu_kernel.kernel_status()}")
    return f"fast (tabulated MLPs, {kernel})"


def set_threads(threads, ranks_per_node: int) -> None:
    """Oversubscribed intra-op threads make each step many times slower (two 2-thread forecasts on 2 cores:
    20× slower each): --threads, else OMP_NUM_THREADS as the user set it, else cores / ranks."""
    if not threads and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = int(os.environ["OMP_NUM_THREADS"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads or max(1, cores // max(1, ranks_per_node)))


def resolve_device(device: str, local_rank: int):
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA GPU is visible; use --device cpu")
        if device == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(device)
