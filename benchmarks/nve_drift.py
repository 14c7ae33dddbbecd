"""Energy flow between elements in the model's own dynamics: NVE forecasts from equilibrated MD frames, each
element's kinetic temperature averaged over the starts, step by step (issue #13, lever 6: a short rollout check).

MD conserves energy and keeps every element at one temperature in NVE; a model whose errors pump energy into one
element and drain another shows it here within ~1 ps, long before a thermostat hides it.

    python benchmarks/nve_drift.py --model runs/check2/named.pt --frames runs/water_md/traj_003.xyz \
        --steps 200 [--no-gain] [--dtype float32]

Prints T_H and T_O (or every element) every steps/10 and their means over the last half of the run.
"""

import argparse

import ase.io
import numpy as np
import torch

from trajcast_dist import units
from trajcast_dist.dynamics.thermostat import add_element_sums, degrees_of_freedom, element_temperatures
from trajcast_dist.dynamics.step import Instability
from trajcast_dist.forecast import ForecastSettings, initial_state, serial_driver
from trajcast_dist.io.checkpoint import load_model
from trajcast_dist.model.fast import use_fast_inference


def temperatures(state) -> dict[str, float]:
    sums = add_element_sums({}, state.numbers, units.masses_amu(state.numbers), state.velocities)
    return element_temperatures(sums, degrees_of_freedom(state.n_atoms, state.periodic))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--frames", required=True, help="extxyz MD trajectory with velocities")
    parser.add_argument("--starts", type=int, nargs="+", default=[1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000],
                        help="frame indices")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--no-gain", action="store_true", help="the network without the file's velocity gains")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.model, dtype=getattr(torch, args.dtype))
    if args.no_gain:
        model.set_velocity_gain(None)
    use_fast_inference(model)
    settings = ForecastSettings(nve=True, dtype=args.dtype)
    curves = []
    for index in args.starts:
        rng = np.random.default_rng(0)
        state = initial_state(ase.io.read(args.frames, index=index), model, settings, rng)
        driver = serial_driver(model, state, settings, rng)
        rows = [temperatures(state)]
        for step in range(1, args.steps + 1):
            try:
                driver.step()
            except Instability as err:
                print(f"start {index}: unstable at step {step}: {err}")
                break
            rows.append(temperatures(state))
        curves.append([list(row.values()) for row in rows])
    n = min(len(c) for c in curves)  # the curves up to the first instability
    mean = np.mean([c[:n] for c in curves], axis=0)
    names = list(rows[0])
    print(f"# {args.model}{' (no gain)' if args.no_gain else ''}: NVE, {len(args.starts)} starts from {args.frames}, "
          f"Δt {model.dt_fs} fs, {args.dtype}")
    print("step  " + "  ".join(f"T_{n:<5}" for n in names))
    for step in range(0, n, max(1, args.steps // 10)):
        print(f"{step:4d}  " + "  ".join(f"{t:7.1f}" for t in mean[step]))
    late = mean[n // 2:].mean(axis=0)
    print("last half: " + ", ".join(f"T_{n} {t:.1f} K" for n, t in zip(names, late))
          + f" (start {', '.join(f'{t:.1f}' for t in mean[0])})")


if __name__ == "__main__":
    main()
