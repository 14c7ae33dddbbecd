"""Geometry of the spatial decomposition (LAMMPS `Domain` + `Comm::set_proc_grid`): a Px×Py×Pz grid of
subdomains over the cell in fractional coordinates, so orthorhombic and triclinic cells are handled alike.

Subdomain (cx, cy, cz) holds the atoms with fractional coordinates s_d ∈ [c_d/P_d, (c_d+1)/P_d). Its
perpendicular width along d is h_d/P_d, with h_d = V/|a_e × a_f| the distance between the cell faces; every
subdomain must be at least one cutoff wide so ghosts and migrating atoms only travel to nearest neighbours.
No messaging here: `Comm` asks the domain who owns what, who the neighbours are and which shift an image gets.
"""

import math

import numpy as np

from trajcast_dist.errors import UserError

__all__ = ["Domain", "choose_grid", "largest_valid_grid", "parse_grid", "perpendicular_widths"]

LO, HI = 0, 1  # directions: towards the lower / upper neighbour along a dimension


def perpendicular_widths(cell) -> np.ndarray:
    """h_d: distance between the two cell faces spanned by the other two vectors (Å)."""
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(d + 1) % 3], cell[(d + 2) % 3])) for d in range(3)])


def parse_grid(text: str) -> tuple[int, int, int]:
    """'2x2x1' → (2, 2, 1)."""
    try:
        grid = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        grid = ()
    if len(grid) != 3 or min(grid) < 1:
        raise UserError(f"--grid {text!r}: give three positive integers PxxPyxPz, e.g. 2x2x1")
    return grid


def largest_valid_grid(widths, cutoff_A: float) -> tuple[int, int, int]:
    """The most subdomains per dimension that keep each at least one cutoff wide."""
    return tuple(max(1, int(math.floor(w / cutoff_A * (1 + 1e-12)))) for w in widths)


def choose_grid(widths, pbc, n_ranks: int, cutoff_A: float) -> tuple[int, int, int]:
    """The grid with Px·Py·Pz = n_ranks and every subdomain ≥ r_c wide that minimises the ghost volume
    ∏(w_d + 2r_c) − ∏w_d per subdomain (faces, edges and corners); ties go to the first in lexical order."""
    widths = np.asarray(widths, dtype=np.float64)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    limit = largest_valid_grid(widths, cutoff_A)
    best, best_cost = None, math.inf
    for grid in _factorisations(n_ranks):
        if any(p > m for p, m in zip(grid, limit)):
            continue
        sub = widths / np.array(grid)
        halo = np.array([2 * cutoff_A if (pbc[d] or grid[d] > 1) else 0.0 for d in range(3)])
        cost = float(np.prod(sub + halo) - np.prod(sub))
        if cost < best_cost - 1e-9 * max(1.0, cost):
            best, best_cost = grid, cost
    if best is None:
        raise UserError(_too_many_ranks(widths, n_ranks, cutoff_A, limit))
    return best


class Domain:
    """The cell, its pbc, the processor grid and the cutoff; all queries are pure functions of these."""

    def __init__(self, cell, pbc, grid, cutoff_A: float):
        self.cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
        self.pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
        self.grid = tuple(int(p) for p in grid)
        self.cutoff_A = float(cutoff_A)
        if abs(np.linalg.det(self.cell)) < 1e-9:
            raise UserError("distributed forecasting needs a cell (the structure has none); run with one process")
        self.inverse = np.linalg.inv(self.cell)
        self.widths = perpendicular_widths(self.cell)
        self.cutoff_fractional = self.cutoff_A / self.widths  # r_c as a fraction of each cell width
        self.size = int(np.prod(self.grid))
        limit = largest_valid_grid(self.widths, self.cutoff_A)
        if any(p > m for p, m in zip(self.grid, limit)):
            raise UserError(f"grid {format_grid(self.grid)} makes subdomains narrower than the cutoff "
                            f"({self.cutoff_A:g} Å) for cell widths {_fmt_widths(self.widths)} Å; "
                            f"at most {format_grid(limit)} fits")

    @classmethod
    def create(cls, cell, pbc, n_ranks: int, cutoff_A: float, grid: str | tuple | None = None) -> "Domain":
        """The automatic grid for n_ranks, or the one asked for (checked against n_ranks)."""
        widths = perpendicular_widths(cell)
        if grid is None:
            grid = choose_grid(widths, pbc, n_ranks, cutoff_A)
        elif isinstance(grid, str):
            grid = parse_grid(grid)
        if int(np.prod(grid)) != n_ranks:
            raise UserError(f"--grid {format_grid(grid)} has {int(np.prod(grid))} subdomains but {n_ranks} ranks "
                            "were launched; make Px·Py·Pz equal the number of ranks")
        return cls(cell, pbc, grid, cutoff_A)

    # --- ranks and neighbours -------------------------------------------------------------------------------
    def coords(self, rank: int) -> tuple[int, int, int]:
        return tuple(int(c) for c in np.unravel_index(rank, self.grid))

    def rank_of(self, coords) -> int:
        return int(np.ravel_multi_index(tuple(int(c) for c in coords), self.grid))

    def neighbor(self, rank: int, dim: int, direction: int) -> int | None:
        """The rank one subdomain lower (LO) or higher (HI) along dim; None past a non-periodic edge."""
        coords = list(self.coords(rank))
        step = -1 if direction == LO else 1
        target = coords[dim] + step
        if not 0 <= target < self.grid[dim]:
            if not self.pbc[dim]:
                return None
            target %= self.grid[dim]
        coords[dim] = target
        return self.rank_of(coords)

    def shift(self, rank: int, dim: int, direction: int) -> np.ndarray:
        """Translation (Å) given to ghosts sent across the periodic boundary: +a_d going below subdomain 0
        (they reappear above the top), −a_d going above the last one."""
        c = self.coords(rank)[dim]
        if direction == LO and c == 0 and self.pbc[dim]:
            return self.cell[dim].copy()
        if direction == HI and c == self.grid[dim] - 1 and self.pbc[dim]:
            return -self.cell[dim]
        return np.zeros(3)

    # --- ownership ------------------------------------------------------------------------------------------
    def fractional(self, positions) -> np.ndarray:
        return np.asarray(positions, dtype=np.float64).reshape(-1, 3) @ self.inverse

    def owner_coords(self, positions) -> np.ndarray:
        """(N, 3) grid coordinates of the subdomain owning each position (clipped, so round-off at s = 1 and
        atoms outside a non-periodic cell stay with the edge subdomain)."""
        grid = np.array(self.grid)
        return np.clip(np.floor(self.fractional(positions) * grid).astype(np.int64), 0, grid - 1)

    def owner(self, positions) -> np.ndarray:
        c = self.owner_coords(positions)
        return np.ravel_multi_index((c[:, 0], c[:, 1], c[:, 2]), self.grid).astype(np.int64)

    def bounds(self, rank: int) -> tuple[np.ndarray, np.ndarray]:
        """Fractional lower and upper bounds of a subdomain."""
        c, grid = np.array(self.coords(rank)), np.array(self.grid)
        return c / grid, (c + 1) / grid

    def subdomain_widths(self) -> np.ndarray:
        return self.widths / np.array(self.grid)

    def describe(self) -> str:
        return (f"grid {format_grid(self.grid)}, subdomains {_fmt_widths(self.subdomain_widths())} Å wide "
                f"(cutoff {self.cutoff_A:g} Å)")


def format_grid(grid) -> str:
    return "x".join(str(int(p)) for p in grid)


def _factorisations(n: int):
    for px in range(1, n + 1):
        if n % px:
            continue
        for py in range(1, n // px + 1):
            if (n // px) % py == 0:
                yield (px, py, n // px // py)


def _too_many_ranks(widths, n_ranks: int, cutoff_A: float, limit) -> str:
    largest = int(np.prod(limit))
    fitting = max(p for p in range(1, min(n_ranks, largest) + 1)
                  if any(all(g <= m for g, m in zip(grid, limit)) for grid in _factorisations(p)))
    if n_ranks > largest:
        why = f"the largest valid P for this box is {largest} (grid {format_grid(limit)})"
    else:
        why = (f"{n_ranks} does not factor into Px≤{limit[0]}, Py≤{limit[1]}, Pz≤{limit[2]} "
               f"(the largest valid P for this box is {largest})")
    return (f"cannot split the cell (widths {_fmt_widths(widths)} Å) over {n_ranks} ranks with every subdomain at "
            f"least one cutoff ({cutoff_A:g} Å) wide: {why}; run with -n {fitting} or a bigger system")


def _fmt_widths(widths) -> str:
    return "×".join(f"{w:.3g}" for w in widths)

