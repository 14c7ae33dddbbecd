"""Tabulate water runs of `benchmarks/validate_model.py`: one markdown row per run, then the ranges over all of
them, each run judged by issue #13's bounds (`validate_model.issue13_bounds`).

    python benchmarks/validation_table.py runs/v100_md11 runs/v100_lattice11 ... --steps 20000

Each RUN is a validate_model --out directory (it reads RUN/analysis/summary.json); the row is labelled with the
directory's name. --steps is the forecast length the runs were given, so that a run that stopped early counts as
unstable. The rows and ranges of docs/validation.md's 100 ps tables are its output (labelled there by start and seed).
"""

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from validate_model import expected_frames, issue13_bounds


def minus(text: str) -> str:
    """Typeset negative numbers with a minus sign, as the docs do."""
    return re.sub(r"(?<![\w.])-(?=\d)", "−", text)


HEADER = ("| run | T [K] | T_H / T_O | \\|T_H−T_O\\|/T | g_OO peak (MD {g:.2f}) | RDF dev O–O | VDOS all (H) "
          "| g_OH (MD {goh:.1f}) | D_O (MD {d:.2f}) | bounds met |")


def load(run: Path) -> dict:
    path = run / "analysis" / "summary.json"
    if not path.is_file():
        sys.exit(f"validation_table: {path} not found: give validate_model --out directories of finished runs")
    summary = json.loads(path.read_text())
    if "O-O" not in summary.get("rdf", {}):
        sys.exit(f"validation_table: {path} is not a water run (no O–O RDF): the bounds are water's")
    return summary


def row(name: str, s: dict, frames: int) -> tuple[str, dict]:
    t = s["temperature"]["forecast"]
    t_h, t_o = t["species_mean_K"]["H"], t["species_mean_K"]["O"]
    d, d_md = s["diffusion"]["O"]["forecast"], s["diffusion"]["O"]["reference"]["D"]
    bounds = issue13_bounds(s, frames)
    judged = {quantity: value for quantity, value, _, _ in bounds}
    missed = [quantity for quantity, _, _, met in bounds if not met]
    met = f"{len(bounds) - len(missed)} of {len(bounds)}"
    if missed:
        met = f"**{met}** ({', '.join(missed)})".replace("|", "\\|")  # a bar would end the table cell
    values = {"T": t["mean_K"], "T_H": t_h, "T_O": t_o, "spread": judged["|T_H − T_O| / T"],
              "g_OO": s["rdf"]["O-O"]["forecast"]["peak_g"], "rdf_dev": s["rdf"]["O-O"]["deviation"],
              "vdos": s["vdos"]["all"]["overlap"], "g_OH": s["rdf"]["O-H"]["forecast"]["peak_g"],
              "D": d["D"], "D_pct": 100.0 * (d["D"] / d_md - 1.0), "met": not missed}
    text = (f"| {name} | {values['T']:.1f} | {t_h:.0f} / {t_o:.0f} | {values['spread']:.3f} | {values['g_OO']:.2f} "
            f"| {values['rdf_dev']:.3f} | {values['vdos']:.3f} ({s['vdos']['H']['overlap']:.3f}) "
            f"| {values['g_OH']:.1f} | {d['D']:.2f} ± {d['err']:.2f} ({values['D_pct']:+.0f} %) "
            f"| {met} |")
    return minus(text), values


def ranges(values: list[dict], d_md: float) -> str:
    def span(key: str, fmt: str) -> str:
        return f"{min(v[key] for v in values):{fmt}}–{max(v[key] for v in values):{fmt}}"

    d = [v["D"] for v in values]
    sem = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
    mean = lambda key: statistics.mean(v[key] for v in values)  # noqa: E731
    return minus(f"{len(values)} runs, every bound met in {sum(v['met'] for v in values)} of {len(values)}: "
            f"T {span('T', '.1f')} K (mean {mean('T'):.1f} K), T_H / T_O {mean('T_H'):.1f} / {mean('T_O'):.1f} K on "
            f"average, |T_H − T_O| / T {span('spread', '.3f')}, g_OO {span('g_OO', '.2f')}, RDF deviation ≤ "
            f"{max(v['rdf_dev'] for v in values):.3f}, VDOS {span('vdos', '.3f')}, g_OH {span('g_OH', '.1f')}, "
            f"D_O {min(v['D_pct'] for v in values):+.0f}…{max(v['D_pct'] for v in values):+.0f} % "
            f"(mean {statistics.mean(d):.2f} ± {sem:.2f}, {100.0 * (statistics.mean(d) / d_md - 1.0):+.1f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="validate_model --out directories")
    parser.add_argument("--steps", type=int, required=True, help="forecast steps each run was given")
    args = parser.parse_args()
    summaries = [load(run) for run in args.runs]
    first = summaries[0]
    print(HEADER.format(g=first["rdf"]["O-O"]["reference"]["peak_g"], goh=first["rdf"]["O-H"]["reference"]["peak_g"],
                        d=first["diffusion"]["O"]["reference"]["D"]))
    print("|---" * 10 + "|")
    values = []
    for run, s in zip(args.runs, summaries):
        text, v = row(run.name, s, expected_frames(s, args.steps))
        print(text)
        values.append(v)
    print()
    print(ranges(values, first["diffusion"]["O"]["reference"]["D"]))


if __name__ == "__main__":
    main()
