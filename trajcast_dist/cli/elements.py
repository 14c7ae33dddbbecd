"""Element lists and per-element values on the command line (`--species H,O`, `--gain H=0.999,O=1.001`)."""

import math

from ase.data import atomic_numbers

from trajcast_dist.errors import UserError

__all__ = ["parse_species", "parse_element_values"]


def parse_species(text: str) -> list[int]:
    numbers = []
    for symbol in filter(None, (s.strip() for s in text.split(","))):
        if symbol not in atomic_numbers:
            raise UserError(f"--species: {symbol!r} is not a chemical element symbol (e.g. H,O)")
        numbers.append(atomic_numbers[symbol])
    if not numbers:
        raise UserError("--species is empty; give elements like H,O")
    return sorted(set(numbers))


def parse_element_values(text: str, flag: str, example: str, value_name: str = "VALUE") -> dict[int, float]:
    """`H=0.996,O=1.0035` → {1: 0.996, 8: 1.0035}; every value positive and finite."""
    values = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        symbol, _, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if symbol not in atomic_numbers or not 0 < number < math.inf:
            raise UserError(f"{flag}: {item!r} is not ELEMENT={value_name} with {value_name} > 0 "
                            f"(e.g. {example})")
        values[atomic_numbers[symbol]] = number
    if not values:
        raise UserError(f"{flag} is empty; give values like {example}")
    return values
