"""TrajCast as an ASE dynamics class: `TrajCastDynamics(atoms).run(1000)` with ASE's observers.

    from ase.io import Trajectory
    from trajcast_dist.ase import TrajCastDynamics

    dyn = TrajCastDynamics(atoms, temperature_K=300, tau_fs=50, seed=1)   # the shipped default model
    dyn.attach(Trajectory("md.traj", "w", atoms).write, interval=10)
    dyn.run(1000)                                                          # 1000 model steps of Δt = 5 fs

Each step is the forecast library's step (`dynamics.rollout.Driver`: model, conservation, CSVR), so a run
reproduces `trajcast-dist forecast` with the same structure, settings and seed number for number. The Atoms
object holds the current positions (wrapped into the cell), velocities in ASE units, the periodic `image` counts
and `info["step"]`, `info["time_fs"]` after every step; positions or velocities changed on it between steps are
taken over. No calculator is needed: the model predicts the motion, not forces.
"""

from __future__ import annotations

from pathlib import Path

import ase.units
import numpy as np
from ase.md.md import MolecularDynamics

from trajcast_dist import units
from trajcast_dist.dynamics.thermostat import add_element_sums, degrees_of_freedom, element_temperatures
from trajcast_dist.errors import UserError
from trajcast_dist.forecast import (ForecastSettings, initial_state, named_thermostat, serial_driver,
                                   resolve_settings)
from trajcast_dist.runtime import DTYPES

__all__ = ["TrajCastDynamics"]

_DEFAULT = ForecastSettings()  # the forecast's defaults, here as in the CLI


class TrajCastDynamics(MolecularDynamics):
    """ASE `MolecularDynamics` driven by a TrajCast model; the time step is the model's Δt.

    `model`: a loaded TrajCast, a model file, or None for the shipped default. `thermostat` and `tau_fs` default,
    as in `forecast`, to the thermostat the model file names (the shipped default: CSVR, 50 fs), else CSVR
    50 fs; `equilibrate_ps` to what the model file names, else 0. `temperature_K`, `tau_fs`, `nve`, `thermostat`,
    `seed`, `dtype`, `max_temperature_factor`, `equilibrate_ps` mean what the `forecast` flags of the same names
    mean (velocities are drawn at `temperature_K` from `seed` when `atoms` has none). `fast` (default) runs the
    fast inference path, `fast=False` the exact one.
    `logfile` ("-" = stdout) gets one line per `loginterval` steps: time, T and each element's T.
    """

    def __init__(self, atoms, model=None, temperature_K: float = _DEFAULT.temperature_K,
                 tau_fs: float | None = None, nve: bool = False, thermostat: str | None = None,
                 seed: int = _DEFAULT.seed, dtype: str = _DEFAULT.dtype, fast: bool = True,
                 max_temperature_factor: float = _DEFAULT.max_temperature_factor,
                 equilibrate_ps: float | None = None, trajectory=None, logfile=None,
                 loginterval: int = 1, **kwargs):
        if dtype not in DTYPES:  # before the model is cast to it
            raise UserError(f"dtype {dtype!r}: choose float64 or float32")
        model, named = _model(model, dtype, fast)
        settings = resolve_settings(named_thermostat(named, thermostat, nve), temperature_K=temperature_K,
                                    tau_fs=tau_fs, thermostat=thermostat, nve=nve, seed=seed, dtype=dtype,
                                    equilibrate_ps=equilibrate_ps, max_temperature_factor=max_temperature_factor)
        self.settings = settings
        rng = np.random.default_rng(settings.seed)
        # Before MolecularDynamics.__init__, which gives momenta-less atoms zero momenta: they need Maxwell–Boltzmann.
        state = initial_state(atoms, model, settings, rng, where="atoms")
        device = next(model.parameters()).device
        self.driver = serial_driver(model, state, settings, rng, device)
        super().__init__(atoms, timestep=model.dt_fs * ase.units.fs, trajectory=trajectory, logfile=None,
                         loginterval=loginterval, **kwargs)
        self._push()
        if logfile:
            self.attach(_TemperatureLog(self, logfile), interval=loginterval)

    def step(self) -> None:
        self._pull()
        self.driver.step()
        self._push()

    def _refresh_properties(self) -> None:
        """ASE asks the calculator for forces before observers run; this dynamics has no forces to compute."""

    def _push(self) -> None:
        """The driver's state onto the Atoms object (remembered, so that user edits can be told apart)."""
        s = self.driver.state()
        self.atoms.set_positions(s.positions)
        self.atoms.set_velocities(units.velocities_to_ase(s.velocities))
        self.atoms.arrays["image"] = s.image.copy()
        self.atoms.info.update(step=int(s.step), time_fs=float(s.time_fs))
        self._pushed = (self.atoms.get_positions(), self.atoms.get_momenta())

    def _pull(self) -> None:
        """Positions or velocities set on the Atoms since the last step replace the driver's. Untouched arrays are
        not converted back, so an undisturbed run keeps the driver's numbers bit for bit."""
        s = self.driver.state()
        positions, momenta = self.atoms.get_positions(), self.atoms.get_momenta()
        if not np.array_equal(positions, self._pushed[0]):
            s.positions = np.ascontiguousarray(positions, dtype=np.float64)
        if not np.array_equal(momenta, self._pushed[1]):
            s.velocities = units.velocities_from_ase(self.atoms.get_velocities())

    def todict(self) -> dict:
        return super().todict() | {"model_dt_fs": self.driver.model.dt_fs}


class _TemperatureLog:
    """`time_ps  T_K  T_<element>...`: MDLogger would ask for potential energies, which this dynamics lacks."""

    def __init__(self, dyn: TrajCastDynamics, logfile):
        self.dyn = dyn
        self.handle = dyn.closelater(open(logfile, "a")) if logfile != "-" else None
        self.header = False

    def __call__(self) -> None:
        s = self.dyn.driver.state()
        masses = units.masses_amu(s.numbers)
        n_dof = degrees_of_freedom(s.n_atoms, s.periodic)
        total = units.temperature_k(units.kinetic_energy_ev(masses, s.velocities), n_dof)
        elements = element_temperatures(add_element_sums({}, s.numbers, masses, s.velocities), n_dof)
        lines = [] if self.header else ["# time_ps  T_K  " + "  ".join(f"T_{e}_K" for e in elements)]
        self.header = True
        lines.append(f"{s.time_fs / 1000:10.4f}  {total:8.2f}  " + "  ".join(f"{t:8.2f}" for t in elements.values()))
        text = "\n".join(lines) + "\n"
        if self.handle is None:
            print(text, end="", flush=True)
        else:
            self.handle.write(text)
            self.handle.flush()


def _model(model, dtype: str, fast: bool):
    """(model, the thermostat its file names or None)."""
    from trajcast_dist.io.checkpoint import load_model
    from trajcast_dist.pretrained import default_model_path

    named = None
    if model is None or isinstance(model, (str, Path)):
        model, meta = load_model(model or default_model_path(), dtype=DTYPES[dtype])
        named = meta.get("thermostat")
    else:
        model = model.to(DTYPES[dtype])
    return (model.use_fast_inference() if fast else model), named
