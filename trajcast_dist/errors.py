"""Errors meant for users: `run_guarded` prints them as one line and exits non-zero."""

import math
import os
import sys
from pathlib import Path

from trajcast_dist.launch import world_rank

__all__ = ["UserError", "check_positive", "run_guarded", "check_finite", "read_user_file"]


class UserError(Exception):
    """Bad input (file, field, value): the message names it and says the fix."""


def check_positive(flag: str, value, unit: str = "", allow_zero: bool = False) -> None:
    """Refuse a number (given, i.e. not None) that is not finite and > 0 (≥ 0 with `allow_zero`), naming the
    flag. Written so that nan fails too: `x <= 0` is false for nan."""
    if value is None:
        return
    in_range = value >= 0 if allow_zero else value > 0
    if in_range and math.isfinite(value):
        return
    bound = "≥ 0" if allow_zero else "> 0"
    raise UserError(f"{flag} {value}{' ' + unit if unit else ''}: must be a finite number {bound}")


def read_user_file(path, what: str, read, fix: str = ""):
    """`read(path)` for a file a user named: a missing file, or one `read` fails on, is one line that names it
    (`what`, e.g. 'model file') and, for a file that does not read, `fix`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} not found")
    try:
        return read(path)
    except Exception as err:  # readers (ASE, torch, json, yaml, zipfile) raise many types; all mean "not this file"
        detail = type(err).__name__ + (f": {str(err).splitlines()[0]}" if str(err).strip() else "")
        raise UserError(f"cannot read {path} as a {what} ({detail}){'; ' + fix if fix else ''}") from None


def run_guarded(func, args, prog: str) -> int:
    """Run a command; user errors become one line on stderr and a non-zero exit."""
    try:
        check_finite(args)
        return int(func(args) or 0)
    except UserError as err:
        if world_rank() == 0:  # an error every rank of an MPI job meets is printed once
            print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def check_finite(args) -> None:
    """Every number given on the command line must be finite: argparse's `float` takes nan and inf, which no
    setting means and which pass range checks written as `x <= 0` (ranges are checked where each setting lives)."""
    for name, value in vars(args).items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, float) and not math.isfinite(item):
                raise UserError(f"--{name.replace('_', '-')} {item}: must be a finite number")
