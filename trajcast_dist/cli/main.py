"""`trajcast-dist SUBCOMMAND ...`: dispatches to one module per subcommand.

Each subcommand module defines `add_arguments(parser)` and `run(args) -> int`. Modules are imported lazily so
`trajcast-dist --help` stays fast and a missing optional dependency only affects its own subcommand.
"""

import argparse
import importlib
import sys

from trajcast_dist.errors import run_guarded

__all__ = ["main", "forecast_main"]

SUBCOMMANDS = {
    "forecast": ("trajcast_dist.cli.forecast", "forecast a trajectory (serial or under mpirun)"),
    "model": ("trajcast_dist.cli.model", "initialise, inspect and list models"),
    "data": ("trajcast_dist.cli.data", "reference MD, training pairs, zarr stores, supercells"),
    "analyze": ("trajcast_dist.cli.analyze", "RDF, VDOS, diffusion and temperature of a trajectory"),
    "evaluate": ("trajcast_dist.cli.evaluate", "test-set errors of a model on a zarr store"),
    "bench": ("trajcast_dist.cli.bench", "forecast speed tables"),
    "train": ("trajcast_dist.train", "train a model: one process, or one rank under torchrun"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="trajcast-dist", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in SUBCOMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(SUBCOMMANDS)}")
    module = importlib.import_module(SUBCOMMANDS[name][0])
    sub_parser = argparse.ArgumentParser(prog=f"trajcast-dist {name}", description=SUBCOMMANDS[name][1])
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    return run_guarded(module.run, args, prog=f"trajcast-dist {name}")


def forecast_main() -> int:
    """`trajcast-dist-forecast ...` is `trajcast-dist forecast ...` (the name used under mpirun)."""
    return main(["forecast", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
