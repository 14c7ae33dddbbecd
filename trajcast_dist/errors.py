"""Errors meant for users: the CLI prints them as one line and exits non-zero."""

import math

__all__ = ["UserError", "check_positive"]


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
