"""Training throughput of the DDP loop: samples/s and step time, exact vs fast path, float64 vs float32, 1 vs 2
CPU ranks (or one GPU), same global batch.

    python benchmarks/train_throughput.py [--configs water_cpu water_mid water] [--paths exact fast]
        [--dtypes float64 float32] [--ranks 1 2] [--steps 5 3 1] [--device cpu] [--batch 2] [--append]

For each config, path, dtype and rank count it builds a synthetic store of the paper's water box (64 H2O, 192
atoms; `tests/toy_store.py`), launches `torchrun --standalone --nproc_per_node W` on this script in
worker mode, and times optimiser steps of global batch B (per-rank batch B/W) after warm-up steps, with a
barrier (and on a GPU a device synchronisation) around each step. Speed-up = t(exact) / t(fast) at the same config, dtype and ranks; scaling efficiency
= t(1 rank) / (W · t(W ranks)) (strong scaling). With --append a section is appended to benchmarks/RESULTS.md.
"""

import argparse
import datetime
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args) -> None:
    import torch

    from trajcast_dist.config import load_config
    from trajcast_dist.training.distributed import Dist
    from trajcast_dist.training.loop import _Trainer, prepare

    config = load_config(args.config)
    config.training.data, config.training.out_dir, config.training.threads = args.data, args.out, 1
    config.training.path, config.training.dtype = args.path, args.dtype
    config.training.batch_size = int(args.batch)
    dist = Dist("auto", args.device)
    prepared = prepare(config, dist.world_size)
    torch.set_num_threads(1)
    dist.init()
    try:
        trainer = _Trainer(prepared, dist, progress=False, log=lambda *a: None)
        from trajcast_dist.training.metrics import Metrics

        metrics = Metrics(prepared.species, trainer.weights, trainer.rms, dist.device)
        trainer.model.train()
        times = []
        for step, frames in trainer.sampler.batches(0):
            if step >= args.warmup + args.steps:
                break
            batch = trainer.maker(frames)
            _synchronise(dist)
            started = time.perf_counter()
            trainer._train_step(batch, metrics)
            _synchronise(dist)
            times.append(time.perf_counter() - started)
        if dist.is_main:
            timed = times[args.warmup:]
            Path(args.result).write_text(json.dumps({"step_s": sum(timed) / len(timed), "steps": len(timed),
                                                     "weights": trainer.model.num_weights()}))
    finally:
        dist.close()


def _synchronise(dist) -> None:
    if dist.device.type == "cuda":
        import torch

        torch.cuda.synchronize(dist.device)
    dist.barrier()


def measure(config: str, path: str, dtype: str, ranks: int, steps: int, warmup: int, data: Path, tmp: Path,
            device: str, batch: int) -> dict:
    result = tmp / f"{Path(config).stem}-{path}-{dtype}-{ranks}.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
               __file__, "--worker", "--config", config, "--data", str(data), "--out", str(tmp / "out"),
               "--steps", str(steps), "--warmup", str(warmup), "--result", str(result), "--path", path,
               "--dtype", dtype, "--device", device, "--batch", str(batch)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(command, env=env, check=True, timeout=3600, stdout=subprocess.DEVNULL)
    return json.loads(result.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["water_cpu", "water_mid", "water"])
    p.add_argument("--paths", nargs="+", default=["exact", "fast"], choices=["exact", "fast"])
    p.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    p.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    p.add_argument("--steps", nargs="+", type=int, default=[5, 3, 1], help="timed steps per config")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: one GPU per rank")
    p.add_argument("--batch", type=int, default=2, help="global batch (configurations per optimiser step)")
    p.add_argument("--repeats", type=int, default=1,
                   help="alternate the runs this many times and keep each one's fastest (shared cores)")
    p.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("config", "data", "out", "result", "path", "dtype"):
        p.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.steps = args.steps[0]
        return worker(args)

    from trajcast_dist.config import load_config
    sys.path.insert(0, str(ROOT / "tests"))  # the synthetic store the tests also train on
    from toy_store import write_toy_store

    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, steps in zip(args.configs, args.steps + args.steps[-1:] * len(args.configs)):
            config = str(ROOT / "configs" / f"{name}.yaml")
            cutoff = load_config(config).model.cutoff_A
            # Targets damped off free flight: a config with a ballistic baseline needs a residual to scale by.
            data = write_toy_store(tmp / f"{name}.zarr", {"train": max(24, 2 * args.batch * (args.warmup + steps)),
                                                          "val": 2}, molecules_per_side=4,
                                   cutoff_A=cutoff, shard_frames=4, damping=0.1)
            best = {}
            for _ in range(args.repeats):
                for key in itertools.product(args.paths, args.dtypes, args.ranks):
                    r = measure(config, *key, steps, args.warmup, data, tmp, args.device, args.batch)
                    if key not in best or r["step_s"] < best[key]["step_s"]:
                        best[key] = r
            for (path, dtype, ranks), r in best.items():
                one = best.get((path, dtype, 1))
                efficiency = one["step_s"] / (ranks * r["step_s"]) if one else float("nan")
                exact = best.get(("exact", dtype, ranks))
                speedup = exact["step_s"] / r["step_s"] if exact else float("nan")
                rows.append((name, r["weights"], path, dtype, ranks, r["steps"], r["step_s"], args.batch / r["step_s"],
                             speedup, efficiency))
                print(f"{name:9s} {r['weights']:>9d} weights  {path:5s} {dtype}  {ranks} rank(s)  "
                      f"{r['step_s'] * 1e3:9.1f} ms/step  {args.batch / r['step_s']:7.3f} samples/s  ×{speedup:5.1f} vs exact  "
                      f"efficiency {efficiency:5.2f}", flush=True)
    table = report(rows, args, load_before, os.getloadavg())
    print(table)
    if args.append:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as f:
            f.write(table)


def report(rows, args, load_before, load_after) -> str:
    def sh(command):
        try:
            return subprocess.run(command, shell=True, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return "?"

    import torch

    model = sh("lscpu | sed -n 's/^Model name:[ ]*//p'") or platform.processor()
    if args.device == "cuda":
        model = f"{torch.cuda.get_device_name()} (nccl) on {model}"
    lines = ["", f"## Training throughput: exact vs fast path ({args.device})", "",
             f"Command: `python benchmarks/train_throughput.py --configs {' '.join(args.configs)} --paths "
             f"{' '.join(args.paths)} --dtypes {' '.join(args.dtypes)} --ranks {' '.join(map(str, args.ranks))} "
             f"--steps {' '.join(map(str, args.steps))} --repeats {args.repeats} --device {args.device} --batch "
             f"{args.batch} --append`  ",
             f"Machine: {model}, {os.cpu_count()} CPUs visible; torch {torch.__version__}, "
             f"1 CPU thread per rank. Date {datetime.date.today()}, commit `{sh('git rev-parse --short HEAD')}` "
             f"(+ uncommitted work tree).  ",
             f"Load average (1/5/15 min) before: {' / '.join(f'{x:.2f}' for x in load_before)}, after: "
             f"{' / '.join(f'{x:.2f}' for x in load_after)}"
             + (" — the cores are shared with other jobs, so absolute times are inflated and noisy.  "
                if args.device == "cpu" else ".  "),
             f"System: 64 H2O (192 atoms), synthetic frames; global batch {args.batch} (per-rank batch "
             f"{args.batch}/W); mean of the timed "
             f"steps after {args.warmup} warm-up step(s), fastest of the repeats; speed-up = t_exact / t_path at the "
             "same config, dtype and ranks; efficiency = t₁ / (W · t_W).",
             "",
             "| config | weights | path | dtype | ranks | timed steps | step time (s) | samples/s | speed-up vs exact "
             "| scaling efficiency |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, weights, path, dtype, ranks, steps, step_s, sps, speedup, eff in rows:
        lines.append(f"| {name} | {weights:,} | {path} | {dtype} | {ranks} | {steps} | {step_s:.3f} | {sps:.3f} | "
                     f"{speedup:.1f} | {eff:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
