"""One forecast step on the atoms a process owns: model → conservation → checks → thermostat.

Used as is by the serial rollout and by the distributed driver; every global quantity goes through the reducer.
"""

import numpy as np
import torch

from trajcast_dist import units
from trajcast_dist.dynamics.thermostat import CSVR, Langevin, hashed_normals, kinetic_energy, mass_weighted_mean
from trajcast_dist.errors import UserError
from trajcast_dist.graph import Graph
from trajcast_dist.reduce import Reducer

__all__ = ["EQUILIBRATION_TAU_FS", "Instability", "StepSettings", "propagate"]


class Instability(UserError):
    """The forecast left the physical regime (NaN, runaway temperature, an atom jumping a cutoff)."""


# The equilibration thermostat (`--equilibrate-ps`): per atom, strong enough to take up the potential energy a
# built box releases in its first tens of femtoseconds, as an MD equilibration with a short Langevin τ would.
EQUILIBRATION_TAU_FS = 10.0
EARLY_FS = 2000.0  # instabilities this early in a trajectory come with a hint to equilibrate


class StepSettings:
    def __init__(self, n_dof: int, dt_fs: float, cutoff_A: float, temperature_K: float, tau_fs: float | None,
                 max_temperature_factor: float = 3.0, thermostat: str = "csvr", seed: int = 0,
                 equilibration_steps: int = 0):
        """tau_fs=None runs NVE; temperature_K then only sets the runaway bound. `thermostat` csvr or langevin.
        Steps 1..equilibration_steps of the trajectory run under Langevin τ = EQUILIBRATION_TAU_FS instead."""
        self.n_dof = n_dof
        self.cutoff_A = cutoff_A
        self.max_temperature_K = max_temperature_factor * temperature_K
        self.seed, self.dt_fs = seed, dt_fs
        self.equilibration_steps = equilibration_steps
        self.equilibration = Langevin(temperature_K, EQUILIBRATION_TAU_FS, dt_fs, seed) if equilibration_steps else None
        if tau_fs is None:
            self.thermostat = None
        elif thermostat == "csvr":
            self.thermostat = CSVR(temperature_K, tau_fs, dt_fs, n_dof)
        elif thermostat == "langevin":
            self.thermostat = Langevin(temperature_K, tau_fs, dt_fs, seed)
        else:
            raise UserError(f"--thermostat {thermostat!r} is not known; use csvr or langevin")


@torch.no_grad()
def propagate(model, graph: Graph, settings: StepSettings, reducer: Reducer, rng: np.random.Generator,
              step: int, ids: np.ndarray, sync=None):
    """Return (displacement, new velocity) of the owned atoms (global `ids`) as float64 numpy arrays, and the
    new T (K).

    Raises Instability on every rank when any rank sees a problem (ranks agree before stopping).
    """
    displacement, velocity = model(graph, sync=sync, reducer=reducer)
    masses = graph.masses[: graph.n_owned]
    finite = bool(torch.isfinite(displacement).all() and torch.isfinite(velocity).all())
    if reducer.any(not finite):
        raise Instability(f"step {step}: the model produced NaN/inf positions or velocities; "
                          "no frame was written for it (try float64 or a smaller τ)")
    if model.position_noise_A.any():
        sigma = model.position_noise_A[graph.species[: graph.n_owned]]
        displacement = displacement + _position_noise(sigma, masses, reducer, settings.seed, step, ids, displacement)
    max_jump = float(displacement.norm(dim=-1).max()) if displacement.numel() else 0.0
    if reducer.any(max_jump > settings.cutoff_A):
        raise Instability(f"step {step}: an atom moved more than the cutoff ({settings.cutoff_A} Å) in one step; "
                          f"the forecast is unstable{_hint(settings, step)}")
    thermostat = settings.equilibration if step <= settings.equilibration_steps else settings.thermostat
    if thermostat is not None:
        velocity = thermostat.apply(velocity, masses, reducer, rng, ids, step)
    temperature = units.temperature_k(kinetic_energy(velocity, masses, reducer), settings.n_dof)
    if reducer.any(temperature > settings.max_temperature_K):
        raise Instability(f"step {step}: temperature {temperature:.0f} K exceeds the bound "
                          f"{settings.max_temperature_K:.0f} K; the forecast is unstable{_hint(settings, step)}")
    return (displacement.to(torch.float64).cpu().numpy(), velocity.to(torch.float64).cpu().numpy(), temperature)


def _hint(settings: StepSettings, step: int) -> str:
    """What to try when a run without equilibration goes unstable in its first picoseconds: most often a start
    far from equilibrium."""
    if settings.equilibration_steps or step * settings.dt_fs > EARLY_FS:
        return ""
    return (" (a structure built rather than equilibrated — a lattice, packmol — heats as it relaxes: hold it at T "
            "first with --equilibrate-ps 0.5)")


def _position_noise(sigma_A: torch.Tensor, masses: torch.Tensor, reducer: Reducer, seed: int, step: int,
                    ids: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """N(0, σ²) per position component (σ per atom), the same for any number of ranks (hashed on seed, step, atom
    id), less its mass-weighted mean (the centre of mass stays where the conservation layer put it). Why: see
    `TrajCast.position_noise_A`."""
    normals = torch.as_tensor(hashed_normals(seed, step, ids, stream=1), dtype=like.dtype, device=like.device)
    noise = sigma_A.unsqueeze(-1) * normals
    return noise - mass_weighted_mean(noise, masses, reducer)
