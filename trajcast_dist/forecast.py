"""Forecasting as a library call: `forecast(atoms, model, steps)` returns the final `ase.Atoms`.

`run_forecast` drives any driver (serial here, distributed in `trajcast_dist.parallel`) with the same
output, logging, restart and progress handling, so `mpirun -n P` and one process write the same files.
"""

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from trajcast_dist import units
from trajcast_dist.dynamics.rollout import Driver, LocalHalo, check_compatible, check_overlaps
from trajcast_dist.dynamics.step import EQUILIBRATION_TAU_FS, StepSettings
from trajcast_dist.dynamics.state import SystemState
from trajcast_dist.dynamics.thermostat import THERMOSTATS, add_element_sums, degrees_of_freedom, element_temperatures
from trajcast_dist.dynamics.velocities import maxwell_boltzmann, remove_net_momentum
from trajcast_dist.errors import UserError, check_positive
from trajcast_dist.io.blocks import frame_header
from trajcast_dist.io.extxyz_writer import ExtxyzFrameWriter
from trajcast_dist.io.restart import RestartReader, RestartWriter, prepare_append
from trajcast_dist.io.structure import has_velocities, state_from_atoms
from trajcast_dist.io.trajectory import state_to_atoms
from trajcast_dist.progress import progress_bar
from trajcast_dist.runtime import DTYPES

__all__ = ["ForecastSettings", "resolve_settings", "named_thermostat", "forecast", "initial_state", "run_forecast",
           "serial_driver", "make_step_settings", "model_path", "append_options"]


@dataclass
class ForecastSettings:
    temperature_K: float = 300.0
    tau_fs: float = 50.0
    nve: bool = False
    thermostat: str = "csvr"
    thermostat_from_model: bool = False  # thermostat and τ are the ones the model file names (`model thermostat`)
    seed: int = 0
    stride: int = 10
    dtype: str = "float64"
    max_temperature_factor: float = 3.0
    equilibrate_ps: float = 0.0  # the first ps under a strong per-atom Langevin thermostat (a built box)

    def validate(self) -> None:
        check_positive("--temperature", self.temperature_K, "K")
        check_positive("--tau", self.tau_fs, "fs")
        if not 1 < self.max_temperature_factor < math.inf:
            raise UserError(f"--max-temperature-factor {self.max_temperature_factor} must be a finite number > 1 "
                            "(the run stops when T exceeds this multiple of the target)")
        if self.thermostat not in THERMOSTATS:
            raise UserError(f"--thermostat {self.thermostat!r} is not known; use {' or '.join(THERMOSTATS)}")
        if self.seed < 0:
            raise UserError(f"--seed {self.seed} must be ≥ 0")
        if not 0 <= self.equilibrate_ps < math.inf:
            raise UserError(f"--equilibrate-ps {self.equilibrate_ps} must be a finite number ≥ 0")
        if self.stride <= 0:
            raise UserError(f"--stride {self.stride} must be > 0")
        if self.dtype not in DTYPES:
            raise UserError(f"--dtype {self.dtype!r}: choose float64 or float32")

    @property
    def thermostat_tau_fs(self):
        return None if self.nve else self.tau_fs

    def describe(self) -> str:
        """The ensemble for log headers, e.g. 'NVT CSVR T=300.0 K τ=50.0 fs'."""
        name = "CSVR" if self.thermostat == "csvr" else "Langevin"
        whose = ""
        if self.thermostat_from_model:
            paper = ForecastSettings.thermostat, ForecastSettings.tau_fs  # the dataclass defaults are the paper's
            whose = (" (the model's, the paper's)" if (self.thermostat, self.tau_fs) == paper
                     else f" (the model's; --thermostat {paper[0]} --tau {paper[1]:g} for the paper's)")
        ensemble = "NVE" if self.nve else f"NVT {name} T={self.temperature_K} K τ={self.tau_fs} fs{whose}"
        if self.equilibrate_ps:
            ensemble += (f" after {self.equilibrate_ps:g} ps of equilibration (Langevin T={self.temperature_K} K "
                         f"τ={EQUILIBRATION_TAU_FS:g} fs)")
        return ensemble


def resolve_settings(stored: dict, *, temperature_K=None, tau_fs=None, thermostat=None, nve: bool = False,
                     seed=None, stride=None, dtype=None, equilibrate_ps=None,
                     max_temperature_factor: float = ForecastSettings.max_temperature_factor) -> ForecastSettings:
    """Settings from what was asked (None: not asked), else `stored` (a restart's settings, or `named_thermostat`
    of a model file), else the defaults; validated. One rule for `forecast` and `TrajCastDynamics`."""
    default = ForecastSettings()
    pick = lambda asked, key: asked if asked is not None else stored.get(key, getattr(default, key))  # noqa: E731
    settings = ForecastSettings(temperature_K=pick(temperature_K, "temperature_K"), tau_fs=pick(tau_fs, "tau_fs"),
                                thermostat=pick(thermostat, "thermostat"),
                                thermostat_from_model=tau_fs is None and bool(stored.get("thermostat_from_model")),
                                nve=nve or bool(stored.get("nve", False)), seed=pick(seed, "seed"),
                                stride=pick(stride, "stride"), dtype=pick(dtype, "dtype"),
                                equilibrate_ps=pick(equilibrate_ps, "equilibrate_ps"),
                                max_temperature_factor=max_temperature_factor)
    settings.validate()
    return settings


def named_thermostat(named: dict | None, thermostat: str | None, nve: bool) -> dict:
    """The thermostat a model file names (`trajcast-dist model thermostat`), as settings overrides: used unless
    another thermostat or NVE is asked for; its τ only with its own thermostat (an asked-for τ wins). The
    equilibration it names holds under any thermostat (not NVE); an asked-for --equilibrate-ps wins."""
    if not named or nve:
        return {}
    start = {"equilibrate_ps": float(named["equilibrate_ps"])} if named.get("equilibrate_ps") else {}
    if thermostat not in (None, named["name"]):
        return start
    return {"thermostat": named["name"], "tau_fs": float(named["tau_fs"]), "thermostat_from_model": True, **start}


def initial_state(atoms, model, settings: ForecastSettings, rng: np.random.Generator, where="structure"):
    """State from a structure: its velocities if it has them, else Maxwell–Boltzmann at T; net momentum zeroed
    (the conservation layer keeps the input momentum, so a drifting start would drift forever)."""
    state = state_from_atoms(atoms, where)
    check_compatible(model, state.numbers, state.pbc, where)
    check_overlaps(state.positions, state.numbers, state.ids, state.cell, state.pbc, where)
    masses = units.masses_amu(state.numbers)
    if has_velocities(atoms):
        state.velocities = remove_net_momentum(state.velocities, masses)
    else:
        state.velocities = maxwell_boltzmann(masses, settings.temperature_K, rng, state.periodic, state.positions)
    return state


def forecast(atoms, model, steps: int, settings: ForecastSettings | None = None, output=None, log=None,
             progress: bool = False):
    """Forecast `steps` model steps from `atoms` (ASE in, ASE out). Frames go to `output` (extxyz) if given."""
    settings = settings or ForecastSettings()
    settings.validate()
    rng = np.random.default_rng(settings.seed)
    dtype = DTYPES[settings.dtype]
    device = next(model.parameters()).device
    model = model.to(dtype)
    state = initial_state(atoms, model, settings, rng)
    driver = serial_driver(model, state, settings, rng, device)
    final = run_forecast(driver, steps, settings, output=output, log=log, progress=progress)
    return state_to_atoms(final)


def serial_driver(model, state: SystemState, settings: ForecastSettings, rng: np.random.Generator,
                  device="cpu") -> Driver:
    """The one-process driver of `state` with `settings` (its dtype, thermostat, bounds)."""
    check_compatible(model, state.numbers, state.pbc)
    return Driver(model, state, frame_header(state), LocalHalo(state.pbc),
                  make_step_settings(model, state.n_atoms, state.periodic, settings), rng, DTYPES[settings.dtype],
                  device)


def make_step_settings(model, n_atoms: int, periodic: bool, settings: ForecastSettings) -> StepSettings:
    return StepSettings(degrees_of_freedom(n_atoms, periodic), model.dt_fs, model.cutoff_A, settings.temperature_K,
                        settings.thermostat_tau_fs, settings.max_temperature_factor, settings.thermostat,
                        settings.seed, round(1000 * settings.equilibrate_ps / model.dt_fs))


def run_forecast(driver, steps: int, settings: ForecastSettings, output=None, restart_path=None,
                 append: bool = False, log=None, progress: bool = False, start_frame: bool = True,
                 start_temperature_K: float | None = None, model_record: dict | None = None) -> SystemState | None:
    """Advance `driver` (a `dynamics.rollout.Driver`: serial, or one rank of a distributed run) by `steps`,
    writing a frame, a log line and the restart file every `stride` steps and after the last step. Frames and
    restarts are written from the driver's snapshot a block of atoms at a time, so no process of a distributed
    run assembles the whole system.

    `append` opens `output` for appending; `start_frame` False leaves out the frame of the starting state (a
    continuation whose trajectory already holds it). `start_temperature_K` is the temperature that frame states
    (a restart's recorded value, so a rewritten frame is byte for byte the one the interrupted run wrote).
    `model_record` (the model's identity) is stored in every restart. Each restart is in place before the frame
    it describes is flushed, and records where that frame starts in `output`, so a run killed between the two
    is cut back and continued exactly (`prepare_append`).

    Returns the final state (None for distributed drivers). On an instability the last good restart stays in
    place and the error propagates.
    """
    if steps <= 0:
        raise UserError(f"--steps {steps} must be > 0")
    main = driver.is_main
    writer = ExtxyzFrameWriter(output, append=append) if (output and main) else None
    dt_fs = driver.model.dt_fs
    restart = _RestartPlan(restart_path, output, model_record) if restart_path else None
    try:
        temperature = driver.temperature() if start_temperature_K is None else start_temperature_K
        _output(writer, bool(output) and start_frame, None, log, temperature, None, dt_fs, driver)
        bar = progress_bar(total=steps, enabled=progress and main, unit="step")
        tick, done_since_tick = time.perf_counter(), 0
        far_start = _FarStart(temperature, settings, log)
        try:
            for done in range(1, steps + 1):
                temperature = driver.step()
                far_start.check(driver.step_count, temperature)
                done_since_tick += 1
                bar.update(1)
                if driver.step_count % settings.stride and done < steps:
                    continue
                seconds_per_step = (time.perf_counter() - tick) / done_since_tick
                _output(writer, bool(output), restart and restart.state(driver, settings, temperature), log,
                        temperature, seconds_per_step, dt_fs, driver)
                if main:
                    bar.set_postfix(T=f"{temperature:.0f}K", ns_day=f"{units.ns_per_day(dt_fs, seconds_per_step):.3g}",
                                    refresh=False)
                tick, done_since_tick = time.perf_counter(), 0
        finally:
            bar.close()
    finally:
        if writer:
            writer.close()
    return driver.state()


def model_path(flag, restart: RestartReader | None) -> str:
    """The model file of a run: --model, else the model that wrote the restart being continued, else the
    shipped default."""
    from trajcast_dist.pretrained import default_model_path

    stored = restart.meta.get("model") if restart else None
    if flag or stored is None:
        return flag or default_model_path()
    if not Path(stored["file"]).is_file():
        raise UserError(f"--restart {restart.path} was written with model {stored['file']}, which is no longer "
                        "there; pass --model with that model")
    return stored["file"]


def append_options(restart: RestartReader) -> dict:
    """`run_forecast` options for continuing `restart` with --append; cuts the old trajectory back (see
    `prepare_append`; the main process only)."""
    return {"append": True, "start_frame": prepare_append(restart),
            "start_temperature_K": restart.meta.get("temperature_K")}


class _RestartPlan:
    """What each restart of a run records besides the state: the generator state, the settings, the model's
    identity, the temperature of the state and where its frame begins in the trajectory (named relative to the
    restart file, so a directory holding both can be moved)."""

    def __init__(self, path, output, model_record: dict | None):
        self.path, self.model_record = path, model_record
        self.trajectory = os.path.relpath(Path(output).resolve(), Path(path).resolve().parent) if output else None

    def state(self, driver, settings: ForecastSettings, temperature_K: float) -> tuple:
        return (self.path, driver.rng.bit_generator.state, asdict(settings),
                {"model": self.model_record, "temperature_K": float(temperature_K), "trajectory": self.trajectory})


class _FarStart:
    """One log line when T jumps far above the start in the first steps of a trajectory: a structure built rather
    than equilibrated releases its excess potential energy within ~0.1 ps, which can drive the model unstable."""

    STEPS, FACTOR = 20, 1.5

    def __init__(self, start_temperature_K: float, settings: ForecastSettings, log):
        self.bound = self.FACTOR * max(start_temperature_K, settings.temperature_K)
        self.log = log if not settings.equilibrate_ps else None

    def check(self, step: int, temperature_K: float) -> None:
        if self.log and step <= self.STEPS and temperature_K > self.bound:
            self.log(f"# warning: T = {temperature_K:.0f} K at step {step}, over {self.FACTOR:g}× the start: the "
                     "structure is far from equilibrium (built rather than equilibrated?); if the run goes "
                     "unstable, hold it at T first with --equilibrate-ps 0.5")
            self.log = None


def _output(writer, frame: bool, restart, log, temperature, seconds_per_step, dt_fs, driver) -> None:
    """One output point (collective on distributed drivers): the frame (if `frame`; `writer` exists on the main
    process only) and the restart (if `restart` = (path, rng state, settings, record)) fed from the same pass
    over the atoms, then the log line."""
    header, blocks = driver.snapshot()
    sinks, elements = [], _ElementTemperatures(header)
    if driver.is_main:
        # the restart first: it finishes (renames into place) before the frame is flushed
        if restart:
            path, rng_state, settings, record = restart
            record = {**record, "frame_start": writer.tell() if frame else None}
            sinks.append(RestartWriter(path, header, rng_state, settings, record))
        sinks += [writer.begin(header, temperature)] if frame else []
        sinks += [elements] if sinks and log else []
    if frame or restart is not None:  # decided from flags every rank shares: all ranks take part in the gather
        _feed(blocks, sinks)
    if log:
        timing = ("" if seconds_per_step is None else
                  f"  {1e3 * seconds_per_step:9.1f} ms/step  {units.ns_per_day(dt_fs, seconds_per_step):8.4f} ns/day")
        extra = "".join(f"  {k}={v}" for k, v in driver.stats().items())
        log(f"step {header['step']:8d}  t={header['time_fs'] / 1000:9.3f} ps  T={temperature:7.1f} K"
            f"{elements.text()}{timing}{extra}")


class _ElementTemperatures:
    """Output sink: each element's kinetic temperature from the atom blocks streamed to the frame/restart writers,
    for the log line. At equilibrium every element is at T; a model that pumps energy into one kind of motion
    shows here while the thermostat keeps T itself right (see docs/validation.md)."""

    def __init__(self, header: dict):
        self.n_atoms, self.periodic = header["n_atoms"], bool(np.asarray(header["pbc"]).any())
        self.sums = {}  # add_element_sums
        self.values = {}

    def add(self, block) -> None:
        add_element_sums(self.sums, block.numbers, units.masses_amu(block.numbers), block.velocities)

    def finish(self) -> None:
        self.values = element_temperatures(self.sums, degrees_of_freedom(self.n_atoms, self.periodic))

    def text(self) -> str:
        """`  T_H=359 T_O=166` with two or more elements (K), else empty."""
        if len(self.values) < 2:
            return ""
        return "  " + " ".join(f"T_{element}={value:.0f}" for element, value in self.values.items())


def _feed(blocks, sinks) -> None:
    """Every block to every sink, then `finish()` each (the restart renames into place only then)."""
    try:
        for block in blocks:
            for sink in sinks:
                sink.add(block)
    except BaseException:
        for sink in sinks:
            getattr(sink, "abort", lambda: None)()
        raise
    for sink in sinks:
        sink.finish()
