"""Where the forecast time goes (issue #8), and what float32 costs in accuracy.

    python benchmarks/forecast_speed.py profile --config configs/water.yaml --atoms 192 [--fast] [--dtype float32]
    python benchmarks/forecast_speed.py float32 --config configs/tiny.yaml --atoms 192 --steps 20

`profile` times one forward pass per module (forward hooks; wall time, 1 torch thread) and prints a markdown
table; `float32` compares a float32 run of a float64 model with the float64 run (one-step MAE, trajectory
deviation). Both print only; paste the tables into benchmarks/RESULTS.md with the load average shown.
"""

import argparse
import copy
import os
import time
from collections import defaultdict

import numpy as np
import torch

from trajcast_dist import units
from trajcast_dist.bench import water_system
from trajcast_dist.config import load_config
from trajcast_dist.graph import build_graph
from trajcast_dist.model import TrajCast


def profile(config: str, n_atoms: int, fast: bool, dtype: torch.dtype) -> str:
    model = _model(config, dtype, fast)
    graph = _graph(model, water_system(n_atoms), dtype)
    times = defaultdict(float)
    names = {}

    def before(module, _):
        module._bench_start = time.perf_counter()

    def after(module, _, __):
        times[names[module]] += time.perf_counter() - module._bench_start

    depth = lambda name: name.count(".")  # noqa: E731
    for name, module in model.named_modules():
        if name and (depth(name) == 0 or (name.startswith("layers.") and depth(name) <= 3)):
            names[module] = name
            module.register_forward_pre_hook(before)
            module.register_forward_hook(after)
    for k, layer in enumerate(model.layers):  # the layer calls edge_tp.pooled (messages + pooling), not forward
        layer.edge_tp.pooled = _timed(layer.edge_tp.pooled, times, f"layers.{k}.edge_tp.pooled")
    with torch.inference_mode():
        model(graph)
        times.clear()
        start = time.perf_counter()
        model(graph)
        total = time.perf_counter() - start
    rows = defaultdict(float)
    for name, seconds in times.items():  # the K layers summed per sub-module
        parts = name.split(".")
        rows[".".join(["layers[*]", *parts[2:]]) if parts[0] == "layers" else name] += seconds
    lines = [f"forward {total:.3f} s — {n_atoms} atoms, {graph.edge_index.shape[1]:,} edges, {config}, "
             f"{'fast' if fast else 'exact'}, {dtype}, load {os.getloadavg()[0]:.2f}", "",
             "| module (summed over layers) | s | % of forward |", "|---|---|---|"]
    for key, seconds in sorted(rows.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {key} | {seconds:.3f} | {100 * seconds / total:.1f} |")
    return "\n".join(lines)


def _timed(method, times, name):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        out = method(*args, **kwargs)
        times[name] += time.perf_counter() - start
        return out

    return timed


def float32_accuracy(config: str, n_atoms: int, steps: int, fast: bool) -> str:
    from trajcast_dist.forecast import ForecastSettings, forecast

    model64 = _model(config, torch.float64, fast)
    model32 = copy.deepcopy(model64).to(torch.float32)
    atoms = water_system(n_atoms)
    velocities = np.random.default_rng(0).normal(size=(n_atoms, 3)) * 0.01
    with torch.inference_mode():
        d64, v64 = model64(_graph(model64, atoms, torch.float64, velocities))
        d32, v32 = model32(_graph(model32, atoms, torch.float32, velocities))
    mae_d = (d32.double() - d64).abs().mean().item()
    mae_v = (v32.double() - v64).abs().mean().item()
    settings = dict(seed=1, temperature_K=300.0)
    end64 = forecast(atoms, model64, steps, ForecastSettings(dtype="float64", **settings))
    end32 = forecast(atoms, model32, steps, ForecastSettings(dtype="float32", **settings))
    box = atoms.cell.array.diagonal()
    apart = end64.positions - end32.positions
    apart -= box * np.round(apart / box)
    return (f"{config}, {n_atoms} atoms, {'fast' if fast else 'exact'}: one step MAE Δr {mae_d:.2e} Å "
            f"(mean |Δr| {d64.abs().mean():.2e}), MAE v {mae_v:.2e} Å/fs (mean |v| {v64.abs().mean():.2e}); "
            f"after {steps} NVT steps max |r32 − r64| = {np.abs(apart).max():.2e} Å, "
            f"T64 {end64.get_temperature():.1f} K, T32 {end32.get_temperature():.1f} K")


def _model(config: str, dtype, fast: bool) -> TrajCast:
    torch.manual_seed(0)
    config = load_config(config)
    model = TrajCast(config.model, [1, 8], scales=config.scales).eval()
    if fast:
        model.use_fast_inference()
    return model.to(dtype)


def _graph(model, atoms, dtype, velocities=None):
    velocities = np.zeros((len(atoms), 3)) + 0.01 if velocities is None else velocities
    return build_graph(atoms.positions, velocities, model.species_index(atoms.numbers),
                       units.masses_amu(atoms.numbers), atoms.cell.array, True, model.cutoff_A, dtype=dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["profile", "float32"])
    parser.add_argument("--config", default="configs/water.yaml")
    parser.add_argument("--atoms", type=int, default=192)
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.what == "profile":
        print(profile(args.config, args.atoms, args.fast, getattr(torch, args.dtype)))
    else:
        print(float32_accuracy(args.config, args.atoms, args.steps, args.fast))


if __name__ == "__main__":
    main()
