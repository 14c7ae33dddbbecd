"""`trajcast-dist forecast STRUCTURE --model M --steps N ...` (also `trajcast-dist-forecast`, and under mpirun)."""

import argparse

from trajcast_dist.dynamics.thermostat import THERMOSTATS
from trajcast_dist.forecast import ForecastSettings
from trajcast_dist.forecast_run import ForecastJob
from trajcast_dist.runtime import DTYPES

__all__ = ["add_arguments", "run"]

_SETTINGS, _JOB = ForecastSettings(), ForecastJob(steps=0)


def add_arguments(parser) -> None:
    # a flag not given stays out of the namespace, so `ForecastJob` and `ForecastSettings` hold the only defaults
    parser.argument_default = argparse.SUPPRESS
    parser.add_argument("structure", nargs="?", help="input structure, any ASE format (velocities used if present)")
    parser.add_argument("--model", help="model file (.pt); default: the shipped default model")
    parser.add_argument("--steps", type=int, required=True, help="number of model steps (each Δt of the model)")
    parser.add_argument("--temperature", type=float,
                        help=f"target temperature in K (default {_SETTINGS.temperature_K:g})")
    parser.add_argument("--tau", type=float, help=f"thermostat relaxation time in fs (default {_SETTINGS.tau_fs:g})")
    parser.add_argument("--thermostat", choices=THERMOSTATS,
                        help=f"{THERMOSTATS[0]} (default, the paper's): global velocity rescaling; langevin: per atom, "
                             "holds each element at T (a longer --tau, e.g. 100–500 fs, disturbs diffusion less)")
    parser.add_argument("--nve", action="store_true", help="no thermostat (microcanonical)")
    parser.add_argument("--equilibrate-ps", type=float, metavar="PS",
                        help="hold the first PS ps at --temperature with a strong per-atom Langevin thermostat "
                             "(τ = 10 fs), then run the chosen ensemble: for a structure built rather than "
                             "equilibrated (a lattice, packmol), which heats as it relaxes (0.5 is enough for water); "
                             "default: what the model file names (`model info`), else 0")
    parser.add_argument("--seed", type=int,
                        help=f"seed for initial velocities and the thermostat (default {_SETTINGS.seed})")
    parser.add_argument("--output", help=f"extxyz trajectory (default {_JOB.output})")
    parser.add_argument("--stride", type=int,
                        help=f"write a frame and a log line every K steps (default {_SETTINGS.stride})")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help=f"float64 or float32 (default {_SETTINGS.dtype})")
    parser.add_argument("--device", help=f"cpu, cuda (cuda:N) or auto (default {_JOB.device})")
    parser.add_argument("--backend", choices=["e3nn", "cueq", "auto"],
                        help="tensor-product backend: e3nn (reference), cueq (cuEquivariance), auto (default: "
                             "cueq on a GPU, e3nn on CPU); same weights either way")
    path = parser.add_mutually_exclusive_group()
    path.add_argument("--fast", "--tabulate", dest="fast", action="store_true",
                      help="fast inference (the default on CPU): tabulated MLP weights and grouped tensor "
                           "products, the edge one in a fused kernel on CPU; ≤ 1e-9 relative to the exact path in "
                           "float64")
    path.add_argument("--exact", dest="fast", action="store_false",
                      help="the exact reference path (tensor products and MLPs per edge; the default on a GPU, "
                           "where it is the faster one)")
    parser.set_defaults(fast=None)
    parser.add_argument("--restart", help="continue from this restart file (STRUCTURE not needed)")
    parser.add_argument("--restart-out", help="restart file to write (default OUTPUT.restart.npz)")
    parser.add_argument("--append", action="store_true",
                        help="with --restart: continue the trajectory without repeating the restart's frame, in "
                             "OUTPUT (the run's own file: a frame a killed run left behind is cut off first) or a "
                             "new file, so `cat` of the two is one trajectory")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--max-temperature-factor", type=float,
                        help=f"stop when T exceeds this multiple of the target "
                             f"(default {_SETTINGS.max_temperature_factor:g})")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads per process (default: $OMP_NUM_THREADS if set, else cores / ranks)")
    parser.add_argument("--grid", help="distributed: processor grid PxxPyxPz, e.g. 2x2x1 (default: automatic)")
    parser.add_argument("--cuda-aware", action="store_true",
                        help="distributed on GPU: give device buffers to MPI directly (needs CUDA-aware MPI); "
                             "default: halos staged through pinned host memory")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from trajcast_dist.forecast_run import run as run_job

    return run_job(ForecastJob(**vars(args)))  # the flags are named as its fields
