"""Validation of a model against its LAMMPS reference (issue #7): test-set MAE (SI Table S1 layout) and an NVT
forecast at 300 K (CSVR, τ = 50 fs unless --tau) analysed against the NVT-CSVR MD reference, potential energies
re-evaluated with the reference force field of --system.

    python benchmarks/validate_model.py --skip-evaluate --steps 20000 --dtype float32 --msd-fit-ps 5 20
    python benchmarks/validate_model.py --model trajcast_dist/pretrained/water_dt5.pt \
        --store runs/water_dt5.zarr --reference runs/water_nvt/traj_000.xyz --steps 4000 --out runs/validation
    python benchmarks/validate_model.py --system quartz --model quartz_dt10.pt --store runs/quartz_dt10.zarr \
        --reference runs/quartz_nvt/traj_000.xyz --steps 5000 --tau 100 --out runs/validation_quartz

The first checks the shipped default against the MD curves it ships with, from the shipped MD frame (issue #13's
one command). Writes OUT/test_metrics.json, OUT/forecast.xyz (+ log), OUT/analysis/ (plots, summary.json) and
prints the side-by-side table, then (water) each bound of issue #13 met or not. `benchmarks/validation_table.py`
tabulates several such runs for docs/validation.md.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def run(command: list[str], log: Path | None = None) -> None:
    print("$", " ".join(command), flush=True)
    beside = Path(sys.executable).parent / command[0]  # the venv's console scripts, activated or not
    if beside.exists():
        command = [str(beside), *command[1:]]
    start = time.perf_counter()
    with open(log, "w") if log else open("/dev/null", "w") as handle:
        result = subprocess.run(command, stdout=handle if log else None, stderr=subprocess.STDOUT, text=True)
    print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    if result.returncode != 0:
        sys.exit(f"validate_model: {command[0]} failed (exit {result.returncode}){f'; see {log}' if log else ''}")


def expected_frames(summary: dict, steps: int) -> int:
    """Frames `analyze` reads from a run of `steps` steps that never stopped early: the start and every step,
    less those before its --skip-ps."""
    return steps + 1 - round(summary["settings"]["skip_ps"] * 1000.0 / summary["forecast"]["dt_fs"])


def issue13_bounds(summary: dict, frames: int) -> list[tuple[str, float, str, bool]]:
    """(quantity, value, bound, met) for each bound of issue #13 on one water run's analysis/summary.json.

    T is judged against the target `analyze` was given (--t0). `frames` is what a run that never stopped early
    analyses. The H / O bound is |T_H − T_O| / T, the issue's
    "within 5 % of each other", not `analyze`'s gap max_s |T_s − T| / T (2/3 of it for water)."""
    t, oo, d_o = summary["temperature"]["forecast"], summary["rdf"]["O-O"], summary["diffusion"]["O"]
    t0 = summary["settings"]["t0_K"]
    spread = abs(t["species_mean_K"]["H"] - t["species_mean_K"]["O"]) / t["mean_K"]
    g, g_md = oo["forecast"]["peak_g"], oo["reference"]["peak_g"]
    d, d_md = d_o["forecast"]["D"], d_o["reference"]["D"]
    n, vdos = summary["forecast"]["n_frames"], summary["vdos"]["all"]["overlap"]
    return [("stable (frames)", n, f"= {frames}", n >= frames),
            ("T mean [K]", t["mean_K"], f"{t0:g} ± 3", abs(t["mean_K"] - t0) <= 3.0),
            ("|T_H − T_O| / T", spread, "≤ 0.05", spread <= 0.05),
            ("g_OO first peak", g, f"{g_md:.2f} ± 10 %", abs(g / g_md - 1) <= 0.10),
            ("RDF deviation O–O", oo["deviation"], "≤ 0.08", oo["deviation"] <= 0.08),
            ("VDOS overlap", vdos, "≥ 0.90", vdos >= 0.90),
            ("D_O [1e-9 m²/s]", d, f"{d_md:.2f} ± 25 %", abs(d / d_md - 1) <= 0.25)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: the shipped default model, as `forecast` uses it)")
    parser.add_argument("--store", help="pair store with a test split (not needed with --skip-evaluate)")
    parser.add_argument("--reference",
                        help="LAMMPS NVT trajectory (extxyz), or its curves (.json from analyze --export-reference); "
                             "default, without --model: the shipped default's MD curves")
    parser.add_argument("--md-frame", help="equilibrated start for --start md (default: the reference's first frame; "
                                           "with the shipped curves, the shipped equilibrated MD frame)")
    parser.add_argument("--system", default="water", choices=["water", "quartz", "paracetamol"],
                        help="reference force field for the potential energies (default water)")
    parser.add_argument("--tau", type=float, default=50.0, help="thermostat relaxation time in fs (default 50)")
    parser.add_argument("--thermostat", default="csvr", choices=["csvr", "langevin"],
                        help="csvr (default, the paper's) or langevin (per atom)")
    parser.add_argument("--skip-evaluate", action="store_true", help="no test-set MAE (the rollout only)")
    parser.add_argument("--steps", type=int, default=4000, help="forecast steps of the model's Δt")
    parser.add_argument("--test-frames", type=int, default=1000)
    parser.add_argument("--skip-ps", type=float, default=2.0, help="equilibration dropped from both trajectories")
    parser.add_argument("--msd-fit-ps", type=float, nargs=2, metavar=("START", "END"),
                        help="diffusion fit window (default: analyze's); start it ≥ 1 ps for a judged D")
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--start", default="md", choices=["md", "lattice"],
                        help="md: the reference's first (equilibrated) frame with its velocities; lattice: water "
                             "molecules in random orientations on a cubic lattice (what a user builds with ASE or "
                             "packmol), velocities from Maxwell–Boltzmann (water only)")
    parser.add_argument("--equilibrate-ps", type=float,
                        help="forecast's --equilibrate-ps: the first ps under Langevin τ = 10 fs (a built box); "
                             "default: what the model file names, as forecast")
    parser.add_argument("--seed", type=int, default=1,
                        help="seeds the lattice box and the forecast's thermostat noise (default 1)")
    parser.add_argument("--out", default="runs/validation")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        from trajcast_dist.forecast import model_path
        from trajcast_dist.pretrained import WATER_192_MD, reference_curves

        args.model = str(model_path(None, None))
        if args.reference is None and args.system == "water":
            args.reference, args.md_frame = str(reference_curves()), args.md_frame or str(WATER_192_MD)
    if args.reference is None:
        sys.exit("validate_model: give --reference (an MD trajectory or its curves) for a model other than the "
                 "shipped default")
    if args.reference.endswith(".json") and args.start == "md" and not args.md_frame:
        sys.exit(f"validate_model: --reference {args.reference} holds curves, not frames: give --md-frame (an "
                 "equilibrated MD frame with velocities) or --start lattice")

    if not args.skip_evaluate:
        if not args.store:
            sys.exit("validate_model: give --store (a pair store with a test split) or --skip-evaluate")
        run(["trajcast-dist", "evaluate", args.model, args.store, "--split", "test", "--max-frames",
             str(args.test_frames), "--json", str(out / "test_metrics.json")], out / "evaluate.log")
        print((out / "evaluate.log").read_text())
    start = out / "start.xyz"
    import ase.io
    if args.start == "lattice":
        from trajcast_dist.structures import water_box

        ase.io.write(start, water_box(seed=args.seed))
    else:
        # an equilibrated MD frame with its velocities
        ase.io.write(start, ase.io.read(args.md_frame or args.reference, index=0))
    forecast = ["trajcast-dist-forecast", str(start), "--model", args.model, "--steps", str(args.steps),
                "--temperature", "300", "--tau", str(args.tau), "--thermostat", args.thermostat, "--stride", "1",
                "--fast", "--dtype", args.dtype,
                "--output", str(out / "forecast.xyz"), "--overwrite", "--quiet", "--seed", str(args.seed),
                *(["--equilibrate-ps", str(args.equilibrate_ps)] if args.equilibrate_ps is not None else [])]
    if args.ranks > 1:
        forecast = ["mpiexec", "-n", str(args.ranks), *forecast]
    run(forecast, out / "forecast.log")
    run(["trajcast-dist", "analyze", str(out / "forecast.xyz"), "--reference", args.reference,
         "--out", str(out / "analysis"), "--overwrite", "--skip-ps", str(args.skip_ps), "--t0", "300",
         "--energy-system", args.system, "--quiet",
         *(["--msd-fit-ps", *map(str, args.msd_fit_ps)] if args.msd_fit_ps else [])], out / "analyze.log")
    print((out / "analyze.log").read_text())
    if args.system == "water":
        summary = json.loads((out / "analysis" / "summary.json").read_text())
        bounds = issue13_bounds(summary, expected_frames(summary, args.steps))
        print(f"issue #13 bounds: {sum(met for *_, met in bounds)} of {len(bounds)} met")
        for name, value, bound, met in bounds:
            print(f"  {name:<20} {value:>10.6g}   {bound:<16} {'met' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
