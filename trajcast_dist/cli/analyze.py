"""`trajcast-dist analyze TRAJ [TRAJ ...] [--reference REF ...] --out DIR`: RDF, VDOS, MSD/D, temperature
(and potential energy, dihedrals) of forecast trajectories against an MD reference; see trajcast_dist.analysis."""

from __future__ import annotations

import argparse

from trajcast_dist.analysis import OBSERVABLES, AnalysisSettings, analyze, format_summary

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = AnalysisSettings()
    parser.add_argument("traj", nargs="+", help="forecast extxyz file(s); several = independent runs (D error bar)")
    parser.add_argument("--reference", nargs="+", default=[], metavar="REF",
                        help="reference MD extxyz file(s), or one reference-curves .json (see --export-reference)")
    parser.add_argument("--out", required=True, help="output directory for PNG, CSV and summary.json")
    parser.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out")
    parser.add_argument("--skip-ps", type=float, default=defaults.skip_ps, help="drop the first X ps (equilibration)")
    parser.add_argument("--stride", type=int, default=defaults.stride, help="use every n-th stored frame")
    parser.add_argument("--dt-fs", type=float, default=None,
                        help="time between frames in fs, for files without info['time_fs']")
    parser.add_argument("--observables", default=None,
                        help=f"comma list from {','.join(OBSERVABLES)} (default: all that apply)")
    parser.add_argument("--rdf-rmax", type=float, default=None,
                        help="RDF range in Å (default: half the shortest perpendicular cell width)")
    parser.add_argument("--bins", type=int, default=defaults.bins, help="RDF bins")
    parser.add_argument("--species-pairs", default=defaults.species_pairs, help="'auto' or e.g. 'O-O,O-H,H-H'")
    parser.add_argument("--vacf-max-ps", type=float, default=defaults.vacf_max_ps,
                        help="VACF length τmax for the VDOS (resolution ≈ 1/τmax)")
    parser.add_argument("--msd-fit-ps", type=float, nargs=2, default=None, metavar=("START", "END"),
                        help="diffusive fit window in ps (default: 0.2–0.5 of a segment)")
    parser.add_argument("--blocks", type=int, default=defaults.blocks, help="blocks (≥ 3) for the D error of one file")
    parser.add_argument("--t0", type=float, default=None, help="target temperature in K (default: the mean T)")
    parser.add_argument("--dihedral", action="append", default=[], metavar="I,J,K,L",
                        help="0-based atom quadruple for a dihedral free-energy profile (repeatable)")
    parser.add_argument("--energy-system", choices=["water", "quartz"], default=None,
                        help="re-evaluate potential energies with this reference force field (LAMMPS)")
    parser.add_argument("--max-memory-gb", type=float, default=defaults.max_memory_gb,
                        help="cap for velocities/positions kept for VACF and MSD")
    parser.add_argument("--export-reference", default=None, metavar="FILE.json",
                        help="also write the curves of TRAJ (an MD run) as a small reference-curves file, usable "
                             "later as --reference FILE.json without the trajectory")
    parser.add_argument("--export-source", default=None, metavar="TEXT",
                        help="what produced TRAJ (e.g. the MD command), stored in the --export-reference file")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    settings = AnalysisSettings(
        skip_ps=args.skip_ps, stride=args.stride, dt_fs=args.dt_fs,
        observables=tuple(o.strip() for o in args.observables.split(",")) if args.observables else None,
        rdf_rmax_A=args.rdf_rmax, bins=args.bins, species_pairs=args.species_pairs, vacf_max_ps=args.vacf_max_ps,
        msd_fit_ps=tuple(args.msd_fit_ps) if args.msd_fit_ps else None, blocks=args.blocks, t0_K=args.t0,
        dihedrals=tuple(args.dihedral), energy_system=args.energy_system, max_memory_gb=args.max_memory_gb)
    summary = analyze(args.traj, args.reference, out_dir=args.out, settings=settings, overwrite=args.overwrite,
                      progress=not args.quiet, export_reference=args.export_reference,
                      export_source=args.export_source)
    print(format_summary(summary))
    print(f"wrote {', '.join(summary['outputs'])} to {args.out}")
    if args.export_reference:
        print(f"wrote reference curves to {args.export_reference}")
    return 0
