"""`trajcast-dist bench forecast --system water --atoms 192,1536 --backend e3nn --dtype float64,float32 --fast`:
the forecast speed table (issue #8), printed and appended to benchmarks/RESULTS.md."""

import itertools
import shlex
import sys

from trajcast_dist.errors import UserError

__all__ = ["add_arguments", "run"]

def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="what", required=True)
    fc = sub.add_parser("forecast", help="seconds per forecast step, ns/day, atoms·steps/s, peak memory")
    fc.add_argument("--system", default="water", choices=["water"])
    fc.add_argument("--atoms", default="192", help="comma-separated atom counts (3·k³: 192,1536,5184)")
    fc.add_argument("--config", default="water",
                    help="comma-separated configs: shipped names (water, tiny) or YAML paths (default water = full size)")
    fc.add_argument("--backend", default="e3nn", help="comma-separated: e3nn, cueq")
    fc.add_argument("--dtype", default="float64", help="comma-separated: float64, float32")
    fc.add_argument("--path", default="fast",
                    help="comma-separated: fast (default: what `forecast` runs — tabulated weights, the fused CPU "
                         "kernel), fast-torch (the same with torch tensor products), exact (`forecast --exact`)")
    fc.add_argument("--fast", action="store_true", help="shorthand for --path fast")
    fc.add_argument("--compare", action="store_true", help="all three paths side by side")
    fc.add_argument("--steps", type=int, default=3, help="timed steps per case (default 3)")
    fc.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    fc.add_argument("--device", default="cpu")
    fc.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: on shared cores more threads spin and slow every step)")
    fc.add_argument("--results", default="benchmarks/RESULTS.md", help="file to append the table to ('' = none)")
    fc.add_argument("--notes", default="", help="free text recorded with the table")


def run(args) -> int:
    from trajcast_dist.bench import PATHS, BenchCase, append_results, device_name, format_table, run_case_isolated

    atoms = [_int(a) for a in args.atoms.split(",")]
    configs = args.config.split(",")
    backends, dtypes = args.backend.split(","), args.dtype.split(",")
    for name in backends:
        if name not in ("e3nn", "cueq"):
            raise UserError(f"--backend {name!r}: choose e3nn or cueq")
    for name in dtypes:
        if name not in ("float64", "float32"):
            raise UserError(f"--dtype {name!r}: choose float64 or float32")
    if args.steps <= 0:
        raise UserError(f"--steps {args.steps} must be > 0")
    paths = list(PATHS) if args.compare else ["fast"] if args.fast else args.path.split(",")
    for name in paths:
        if name not in PATHS:
            raise UserError(f"--path {name!r}: choose from {', '.join(PATHS)}")
    results = []
    for n, config, backend, dtype, path in itertools.product(atoms, configs, backends, dtypes, paths):
        case = BenchCase(config, n, backend, dtype, path, args.device)
        result = run_case_isolated(case, args.steps, args.warmup, args.threads)
        results.append(result)
        print(f"# {n} atoms {config} {backend} {dtype} {path}: "
              f"{result.seconds_per_step:.3f} s/step", file=sys.stderr, flush=True)
    table = format_table(results)
    print(table)
    if args.results:
        command = "trajcast-dist bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        append_results(args.results, table, command, device_name(args.device), args.notes, args.threads)
    return 0


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--atoms: {text!r} is not an integer") from None
