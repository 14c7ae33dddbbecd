"""Forecast speed (issue #8): time full model steps (graph + model + conservation + thermostat) and write a
Table-S2-style table. Called by `trajcast-dist bench forecast`; usable from Python.

Weights are random (speed does not depend on their values); the system is the paper's water box repeated:
192, 1,536, 5,184 atoms = 4³, 8³, 12³ molecules at ≈ 1 g/cm³.
"""

import datetime
import os
import resource
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from trajcast_dist.runtime import usable_cores
from trajcast_dist.units import ns_per_day

__all__ = ["BenchCase", "BenchResult", "run_case", "run_case_isolated", "water_system", "format_table",
           "append_results", "PAPER_SECONDS_PER_STEP", "PATHS"]

# exact: the training path; fast-torch: tabulated weights + grouped tensor products in torch; fast: the same
# with the fused CPU edge kernel (model/cpu_kernel.py) where it applies — what `forecast --fast` runs.
PATHS = ("exact", "fast-torch", "fast")
PAPER_SECONDS_PER_STEP = 8.3  # the paper's reference code, full water model, 192 atoms, CPU (issue #8)


@dataclass
class BenchCase:
    config: str  # path of a YAML config
    atoms: int
    backend: str = "e3nn"
    dtype: str = "float64"
    path: str = "exact"  # one of PATHS
    device: str = "cpu"


@dataclass
class BenchResult:
    case: BenchCase
    seconds_per_step: float
    steps: int
    edges: int
    peak_mb: float
    dt_fs: float
    num_weights: int

    @property
    def ns_per_day(self) -> float:
        return ns_per_day(self.dt_fs, self.seconds_per_step)

    @property
    def atom_steps_per_s(self) -> float:
        return self.case.atoms / self.seconds_per_step


def water_system(n_atoms: int):
    """A water box of n_atoms = 3 k³ atoms (k³ molecules), density as the paper's 64-molecule box."""
    from trajcast_dist.errors import UserError
    from trajcast_dist.structures import water_box

    k = round((n_atoms / 3) ** (1 / 3))
    if 3 * k ** 3 != n_atoms:
        raise UserError(f"--atoms {n_atoms}: water boxes have 3·k³ atoms (192, 1536, 5184, ...)")
    return water_box(molecules_per_side=k, seed=0)


def run_case(case: BenchCase, steps: int, warmup: int = 1, seed: int = 0) -> BenchResult:
    """Build a random-weight model for `case`, run `warmup` then `steps` forecast steps, time the latter."""
    from trajcast_dist.config import load_config
    from trajcast_dist.forecast import ForecastSettings, initial_state, serial_driver
    from trajcast_dist.runtime import DTYPES
    from trajcast_dist.graph.graph import neighbor_pairs
    from trajcast_dist.model import TrajCast

    config = load_config(case.config)
    torch.manual_seed(seed)
    dtype, device = DTYPES[case.dtype], torch.device(case.device)
    model = TrajCast(config.model, [1, 8], case.backend, config.scales).to(dtype=dtype, device=device).eval()
    if case.path != "exact":
        model.use_fast_inference(cpu_kernel=case.path == "fast")
    atoms = water_system(case.atoms)
    settings = ForecastSettings(dtype=case.dtype, seed=seed)
    rng = np.random.default_rng(seed)
    state = initial_state(atoms, model, settings, rng)
    driver = serial_driver(model, state, settings, rng, device)
    edges = len(neighbor_pairs(state.positions, state.cell, state.pbc, model.cutoff_A)[0])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        for _ in range(warmup):
            driver.step()
        _synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            driver.step()
        _synchronize(device)
        seconds = (time.perf_counter() - start) / steps
    return BenchResult(case, seconds, steps, edges, _peak_mb(device), model.dt_fs, model.num_weights())


def run_case_isolated(case: BenchCase, steps: int, warmup: int = 1, threads: int | None = None) -> BenchResult:
    """`run_case` in a fresh process, so the CPU peak memory (max RSS) belongs to this case alone."""
    import json
    import sys

    request = json.dumps({"case": asdict(case), "steps": steps, "warmup": warmup, "threads": threads})
    done = subprocess.run([sys.executable, "-m", "trajcast_dist.bench", request], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark case {case} failed:\n{done.stderr[-2000:]}")
    fields = json.loads(done.stdout.strip().splitlines()[-1])
    return BenchResult(case=case, **fields)


def format_table(results: list[BenchResult]) -> str:
    head = ("| atoms | edges | config | backend | dtype | path | s/step | s per 1,000 steps | ns/day | atoms·steps/s "
            "| vs paper 8.3 s/step | peak MB |")
    lines = [head, "|" + "|".join(["---"] * 12) + "|"]
    for r in results:
        c = r.case
        lines.append(f"| {c.atoms:,} | {r.edges:,} | {Path(c.config).stem} ({r.num_weights / 1e6:.2f}M) | "
                     f"{c.backend} | {c.dtype} | {c.path} | {r.seconds_per_step:.3g} | "
                     f"{1000 * r.seconds_per_step:,.0f} | {r.ns_per_day:.3g} | {r.atom_steps_per_s:,.0f} | "
                     f"{PAPER_SECONDS_PER_STEP / r.seconds_per_step:.2f}× | {r.peak_mb:,.0f} |")
    return "\n".join(lines)


def append_results(path, table: str, command: str, device: str, notes: str = "", threads: int | None = None) -> None:
    """Append a dated table under the issue-8 section of benchmarks/RESULTS.md (created if missing)."""
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    path.parent.mkdir(parents=True, exist_ok=True)  # outside a checkout, benchmarks/ is made where the user runs
    section = "## Forecast speed (issue 8)"
    block = (f"\n### {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}\n\n"
             f"- command: `{command}`\n- machine: {device}, torch threads {threads or torch.get_num_threads()}\n"
             f"- load average at the end: {load_average()} (other jobs share these cores)\n"
             f"- commit: {commit()}\n" + (f"- notes: {notes}\n" if notes else "") + f"\n{table}\n")
    if section not in text:
        text = text.rstrip("\n") + f"\n\n{section}\n"
    path.write_text(text.rstrip("\n") + "\n" + block)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    model = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                  if line.startswith("model name")), "CPU")
    return f"{model}, {usable_cores()} cores"


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device) -> float:
    """GPU: peak allocated by torch. CPU: the process's peak resident set (covers all cases run so far)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _main(request: str) -> None:
    import json

    args = json.loads(request)
    if args["threads"]:
        torch.set_num_threads(args["threads"])
    result = run_case(BenchCase(**args["case"]), args["steps"], args["warmup"])
    fields = asdict(result)
    fields.pop("case")
    print(json.dumps(fields))


if __name__ == "__main__":
    import sys

    _main(sys.argv[1])
