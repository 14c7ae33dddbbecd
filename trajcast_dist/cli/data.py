"""`trajcast-dist data md|pairs|supercell|info`: reference MD, training pairs, supercells, store summaries.

Thin wrappers over `trajcast_dist.data` (DESIGN §6); every option maps onto a library argument.
"""

from __future__ import annotations

import json
import shlex
import sys
import time

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    md = sub.add_parser("md", help="reference trajectories from LAMMPS (paper protocol)")
    md.add_argument("system", help="water | quartz | paracetamol")
    md.add_argument("--out", required=True, help="output directory (traj_000.xyz, ..., in.lammps, log.lammps)")
    md.add_argument("--temperature", type=float, default=300.0, help="target temperature in K (default 300)")
    md.add_argument("--equilibrate-ps", type=float, default=None,
                    help="NVT equilibration length in ps (default: paper, water 10, quartz 10 NpT + 50 NVT, "
                         "paracetamol 25)")
    md.add_argument("--production-ps", type=float, default=50.0, help="length of each production run in ps")
    md.add_argument("--trajectories", type=int, default=5, help="independent production runs (default 5)")
    md.add_argument("--seed", type=int, default=0)
    md.add_argument("--ensemble", choices=("nve", "nvt-csvr", "nvt-langevin"), default="nve",
                    help="nve: training data; nvt-csvr (the paper's) or nvt-langevin (per atom, zero net force): "
                         "thermostatted reference for validation, to compare with `forecast --thermostat`")
    md.add_argument("--tau-fs", type=float, help="production thermostat relaxation time in fs (default: the "
                                                  "system's, water 50)")
    md.add_argument("--stride-fs", type=float, default=5.0, help="time between saved frames in fs (default 5)")
    md.add_argument("--repeat", type=int, nargs=3, default=(1, 1, 1), metavar=("A", "B", "C"),
                    help="replicate the reference box before equilibration")
    md.add_argument("--element-temperatures", metavar="EL=K,...",
                    help="rescale each named element's start velocities to this temperature, e.g. H=375,O=150: "
                         "NVE data of the return to equipartition from a state a drifting model reaches")
    md.add_argument("--overwrite", action="store_true", help="replace trajectories already in --out")
    md.add_argument("--resume", action="store_true", help="keep finished trajectories in --out and run the rest")

    pairs = sub.add_parser("pairs", help="build (x_t, x_t+dt) training pairs into a sharded zarr store")
    pairs.add_argument("trajectories", nargs="+", metavar="TRAJ", help="ASE-readable trajectories with velocities")
    pairs.add_argument("--dt", type=float, required=True, help="time step of the pairs in fs")
    pairs.add_argument("--out", required=True, help="output zarr store (directory)")
    pairs.add_argument("--cutoff", type=float, default=6.0, help="neighbour cutoff in Å for the statistics")
    group = pairs.add_mutually_exclusive_group()
    group.add_argument("--split", default=None, help="fractions, e.g. train=0.8,val=0.2 (default)")
    group.add_argument("--split-by-trajectory", default=None,
                       help="trajectory counts in file order, e.g. train=3,val=1,test=1")
    pairs.add_argument("--shard-frames", type=int, default=256, help="frames per zarr shard (default 256)")
    pairs.add_argument("--max-pairs", type=int, default=None, help="at most N pairs per split, evenly spaced")
    pairs.add_argument("--frame-fs", type=float, default=None,
                       help="time between frames in fs, for files that do not store time_fs")
    pairs.add_argument("--overwrite", action="store_true")

    cell = sub.add_parser("supercell", help="repeat a structure (velocities kept), streamed to extxyz")
    cell.add_argument("structure", help="ASE-readable structure (last frame is used)")
    cell.add_argument("--repeat", type=int, nargs=3, required=True, metavar=("A", "B", "C"))
    cell.add_argument("--out", required=True, help="output extxyz file")
    cell.add_argument("--overwrite", action="store_true")

    info = sub.add_parser("info", help="summary of a pair store")
    info.add_argument("store", help="zarr store written by `trajcast-dist data pairs`")


def run(args) -> int:
    return {"md": _md, "pairs": _pairs, "supercell": _supercell, "info": _info}[args.action](args)


def _md(args) -> int:
    from trajcast_dist.cli.elements import parse_element_values
    from trajcast_dist.data.lammps_md import run_reference_md

    element_temperatures = (parse_element_values(args.element_temperatures, "--element-temperatures",
                                                 "H=375,O=150", "K") if args.element_temperatures else None)
    start = time.perf_counter()
    paths = run_reference_md(args.system, args.out, temperature_K=args.temperature,
                             equilibrate_ps=args.equilibrate_ps, production_ps=args.production_ps,
                             n_trajectories=args.trajectories, seed=args.seed, ensemble=args.ensemble,
                             stride_fs=args.stride_fs, repeat=tuple(args.repeat), overwrite=args.overwrite,
                             resume=args.resume, tau_fs=args.tau_fs, element_temperatures=element_temperatures)
    print(f"wrote {len(paths)} trajectories to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


def _pairs(args) -> int:
    from trajcast_dist.data.pairs import build_pairs, parse_split

    start = time.perf_counter()
    out = build_pairs(args.trajectories, args.dt, args.out, cutoff_A=args.cutoff,
                      split=parse_split(args.split, integer=False) if args.split else None,
                      split_by_trajectory=(parse_split(args.split_by_trajectory, integer=True)
                                           if args.split_by_trajectory else None),
                      shard_frames=args.shard_frames, max_pairs=args.max_pairs, frame_fs=args.frame_fs,
                      overwrite=args.overwrite, command=shlex.join(["trajcast-dist", *sys.argv[1:]]))
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    return 0


def _supercell(args) -> int:
    from trajcast_dist.data.supercell import write_supercell

    out = write_supercell(args.structure, args.repeat, args.out, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


def _info(args) -> int:
    from trajcast_dist.data.store import PairStore

    store = PairStore(args.store)
    attrs = store.attrs
    print(f"store        {store.path}")
    print(f"species      {attrs['species']}")
    print(f"dt_fs        {attrs['dt_fs']}")
    print(f"cutoff_A     {attrs['cutoff_A']}")
    print(f"shard_frames {store.shard_frames}")
    for split in store.splits:
        first = store.frame(split, 0)
        print(f"split {split:6s} {store.n_frames(split):7d} frames, {len(first['species'])} atoms in frame 0, "
              f"{len(store.shards(split))} shards")
        for source in attrs["splits"][split]["sources"]:
            print(f"    {source['file']}: frames {source['first_frame']}..{source['last_frame']} "
                  f"({source['n_pairs']} pairs)")
    print("statistics   " + json.dumps(attrs["statistics"], indent=2).replace("\n", "\n             "))
    provenance = attrs["provenance"]
    print(f"provenance   {provenance['package']}, {provenance['date']}")
    print(f"    command: {provenance['command']}")
    for source in provenance["sources"]:
        print(f"    {source['file']}  sha256 {source['sha256'][:16]}...")
    return 0
