"""A forecast run from what was asked (`ForecastJob`): one set-up sequence, one header line, for one process
and for every rank under mpirun (`parallel.driver.run_distributed` calls the same steps)."""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trajcast_dist.errors import UserError
from trajcast_dist.forecast import ForecastSettings, append_options, initial_state, model_path, named_thermostat, \
    resolve_settings, run_forecast, serial_driver
from trajcast_dist.io.restart import RestartReader
from trajcast_dist.launch import world_size
from trajcast_dist.runtime import DTYPES, resolve_device, set_threads

__all__ = ["ForecastJob", "Setup", "run", "prepare", "open_model", "header_line", "load_forecast_model"]


@dataclass
class ForecastJob:
    """A forecast as asked for (the CLI's flags, one field each). Unset settings (None) come from the restart
    being continued, else from `ForecastSettings`."""

    steps: int
    structure: str | None = None
    model: str | None = None
    temperature: float | None = None
    tau: float | None = None
    thermostat: str | None = None
    nve: bool = False
    seed: int | None = None
    output: str = "forecast.xyz"
    stride: int | None = None
    dtype: str | None = None
    device: str = "cpu"
    backend: str = "auto"  # tensor products: e3nn, cueq, auto (`model.backends.resolve_backend`)
    fast: bool | None = None  # None: fast on CPU, exact on a GPU (where the tabulated path is 3-4x slower, H200)
    restart: str | None = None
    restart_out: str | None = None
    append: bool = False
    overwrite: bool = False
    max_temperature_factor: float = ForecastSettings.max_temperature_factor
    equilibrate_ps: float | None = None
    threads: int | None = None
    grid: str | None = None
    cuda_aware: bool = False
    quiet: bool = False


@dataclass
class Setup:
    """What the main process resolves before any model is loaded."""

    settings: ForecastSettings
    output: Path
    restart_out: Path
    model_file: str
    restart: RestartReader | None


def run(job: ForecastJob) -> int:
    """One process, or one rank of `mpirun -n P` (the launcher's environment says which)."""
    if world_size() > 1:
        from trajcast_dist.parallel.driver import run_distributed
        return run_distributed(job)
    return run_serial(job)


def run_serial(job: ForecastJob) -> int:
    from trajcast_dist.io.restart import check_model, load_restart
    from trajcast_dist.io.structure import read_structure

    setup = prepare(job)
    settings, restart = setup.settings, setup.restart
    device, model, record = open_model(job, settings.dtype, setup.model_file, ranks_per_node=1, local_rank=0)
    rng = np.random.default_rng(settings.seed)
    if restart:
        check_model(job.restart, restart.meta.get("model"), record)
        state, rng.bit_generator.state, _ = load_restart(job.restart)
    else:
        state = initial_state(read_structure(job.structure), model, settings, rng, where=str(job.structure))
    continuation = append_options(restart) if job.append else {}
    driver = serial_driver(model, state, settings, rng, device)
    log = lambda line: print(line, flush=True)  # noqa: E731
    log(header_line(state.n_atoms, model, settings, device, "1 process"))
    run_forecast(driver, job.steps, settings, output=setup.output, restart_path=setup.restart_out, log=log,
                 progress=not job.quiet, model_record=record, **continuation)
    log(f"# wrote {setup.output} and {setup.restart_out}")
    return 0


def prepare(job: ForecastJob) -> Setup:
    """The main process's checks and choices: settings (flags, else the restart's, else defaults), output files,
    model file. With --restart only the restart's metadata is read here."""
    restart = RestartReader(job.restart) if job.restart else None
    if not job.restart and not job.structure:
        raise UserError("give a STRUCTURE file to forecast (or --restart FILE to continue a run)")
    model_file = model_path(job.model, restart)
    settings = resolve_settings(restart.settings if restart else _model_thermostat(job, model_file),
                                temperature_K=job.temperature, tau_fs=job.tau, thermostat=job.thermostat,
                                nve=job.nve, seed=job.seed, stride=job.stride, dtype=job.dtype,
                                equilibrate_ps=job.equilibrate_ps, max_temperature_factor=job.max_temperature_factor)
    if job.steps <= 0:
        raise UserError(f"--steps {job.steps} must be > 0")
    if job.threads is not None and job.threads <= 0:
        raise UserError(f"--threads {job.threads} must be > 0")
    return Setup(settings, *_outputs(job), model_file, restart)


def _model_thermostat(job: ForecastJob, model_file) -> dict:
    from trajcast_dist.io.checkpoint import read_metadata

    return named_thermostat(read_metadata(model_file)[0].get("thermostat"), job.thermostat, job.nve)


def open_model(job: ForecastJob, dtype: str, model_file, ranks_per_node: int, local_rank: int):
    """Threads, device and model of this process (every rank the same): (device, model, its identity record)."""
    set_threads(job.threads, ranks_per_node)
    device = resolve_device(job.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    fast = device.type == "cpu" if job.fast is None else job.fast
    model, record = load_forecast_model(model_file, dtype, device, backend=job.backend, fast=fast)
    return device, model, record


def header_line(n_atoms: int, model, settings: ForecastSettings, device, processes: str) -> str:
    from trajcast_dist.io.checkpoint import describe_gains, describe_position_noise

    gains = describe_gains(dict(zip(model.species, model.velocity_gain.tolist())))
    noise = describe_position_noise(dict(zip(model.species, model.position_noise_A.tolist())))
    calibration = (f", velocity gain {gains}" if gains else "") + (f", position noise {noise}" if noise else "")
    return (f"# trajcast-dist forecast: {n_atoms} atoms, Δt={model.dt_fs} fs, {settings.describe()}, "
            f"{settings.dtype}, device={device}, path {_inference_path(model, device)}{calibration}, {processes}")


def load_forecast_model(path, dtype: str, device, backend: str = "auto", fast: bool = False):
    """(model, its identity record) from a model file (see `io.checkpoint.model_record`)."""
    from trajcast_dist.io.checkpoint import load_model, model_record
    from trajcast_dist.model.backends import resolve_backend

    on_gpu = torch.device(device).type == "cuda"
    if fast and on_gpu and backend == "cueq":
        # Reading its CG blocks failed on an H200 (cuEquivariance 0.13, device mismatch inside the kernel).
        raise UserError("--fast with --backend cueq on a GPU is not supported: use --exact (the default on a GPU) "
                        "or --backend e3nn")
    # The fast path replaces the tensor products a backend provides: auto means e3nn there.
    backend = "e3nn" if fast and backend == "auto" else resolve_backend(backend, device)
    model, meta = load_model(path, dtype=DTYPES[dtype], device=device, backend=backend)
    if fast and not on_gpu:
        from trajcast_dist.model import cpu_kernel
        from trajcast_dist.launch import local_rank

        if cpu_kernel.needs_build() and local_rank() == 0:
            print("trajcast-dist: compiling the fused CPU kernel on first use (≈ 30 s, cached afterwards)",
                  file=sys.stderr, flush=True)
        cpu_kernel.edge_kernel()  # now, before any frame is written: a run killed mid-load leaves a build lock
    return (model.use_fast_inference() if fast else model), model_record(path, meta)


def _outputs(job: ForecastJob) -> tuple[Path, Path]:
    """(trajectory, restart file) after the checks: distinct files, writable, nothing replaced without
    --overwrite (--append continues an existing trajectory; continuing in place updates the restart)."""
    from trajcast_dist.io.atomic import check_distinct, check_writable

    if job.append and not job.restart:
        raise UserError("--append continues a run: give --restart FILE too")
    output = Path(job.output)
    restart_out = Path(job.restart_out or f"{output}.restart.npz")
    check_distinct({"--output": output, "--restart-out": restart_out})
    check_distinct({"--output": output, "--restart": job.restart})
    in_place = bool(job.restart) and Path(job.restart).resolve() == restart_out.resolve()
    return (check_writable(output, job.overwrite or job.append),
            check_writable(restart_out, job.overwrite or in_place, "restart file"))


def _inference_path(model, device) -> str:
    """Which path runs, and on CPU whether the fused edge kernel does."""
    if not model.fast:
        return "exact (e3nn tensor products)"
    if torch.device(device).type != "cpu":
        return "fast (tabulated MLPs, grouped tensor products)"
    from trajcast_dist.model import cpu_kernel

    kernel = "fused CPU kernel" if model.layers[0].edge_tp.uses_cpu_kernel(torch.zeros(1)) else (
        f"torch edge product: kernel {cpu_kernel.kernel_status()}")
    return f"fast (tabulated MLPs, {kernel})"
