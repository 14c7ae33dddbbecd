"""Species-resolved radial distribution functions g_ab(r) of a periodic system (paper Results, Fig. 4D).

    g_ab(r) = V / (N_a N'_b) · ⟨n_ab(r)⟩ / (4/3 π (r_hi³ − r_lo³))

with n_ab(r) the number of ordered pairs (i ∈ a, j ∈ b, i ≠ j) in the shell and N'_b = N_b for a ≠ b,
N_a − 1 for a = b, so an ideal gas gives g = 1 exactly in expectation, also for few atoms. Pairs are found over all
periodic images (vesin) up to r_max ≤ half the shortest perpendicular cell width, so every pair appears once
(triclinic cells included). Bins are half-open, [r_lo, r_hi), and r = r_max is outside the last one: in a k×k×k
supercell of a box of width r_max every atom has its six replicas at exactly r_max, which would otherwise pile
into the last bin as a spike. The running coordination number n_ab(r) = Σ_shells ⟨n_ab⟩ / N_a counts b atoms
around one a atom. RDF deviation against a reference (our definition, reported in summary.json):

    Δg = ∫ |g − g_ref| dr / ∫ g_ref dr      (0 for identical curves, on the common r grid)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase.data import chemical_symbols
from vesin import NeighborList

from trajcast_dist.analysis.trajectory import half_min_width_A
from trajcast_dist.errors import UserError

__all__ = ["RDFResult", "RDFAccumulator", "radial_distribution", "species_pairs", "pair_label", "first_peak",
           "rdf_deviation"]


_EDGE_RTOL = 1e-7


@dataclass
class RDFResult:
    """g(r) and running coordination number per pair label ("O-H": H around O), on bin centres `r_A`."""
    r_A: np.ndarray
    edges_A: np.ndarray
    g: dict[str, np.ndarray]
    coordination: dict[str, np.ndarray]
    n_frames: int
    pairs: list[tuple[int, int]] = field(default_factory=list)


def pair_label(pair: tuple[int, int]) -> str:
    return f"{chemical_symbols[pair[0]]}-{chemical_symbols[pair[1]]}"


def species_pairs(spec: str, numbers) -> list[tuple[int, int]]:
    """Pairs to compute: "auto" = all unordered pairs, heavier element first (O-O, O-H, H-H); else "O-O,O-H"."""
    present = sorted(set(int(z) for z in numbers), reverse=True)
    if spec == "auto":
        return [(a, b) for k, a in enumerate(present) for b in present[k:]]
    pairs = []
    for item in spec.split(","):
        names = item.strip().split("-")
        if len(names) != 2 or any(n not in chemical_symbols for n in names):
            raise UserError(f"--species-pairs {spec!r}: {item!r} is not like 'O-H'; give comma-separated "
                            "element pairs or 'auto'")
        pair = (chemical_symbols.index(names[0]), chemical_symbols.index(names[1]))
        missing = [n for n, z in zip(names, pair) if z not in present]
        if missing:
            raise UserError(f"--species-pairs {spec!r}: element {missing[0]} is not in the trajectory "
                            f"(it has {', '.join(chemical_symbols[z] for z in present)})")
        if pair not in pairs and pair[::-1] not in pairs:
            pairs.append(pair)
    return pairs


class RDFAccumulator:
    """Histogram pair distances frame by frame; memory is O(bins · pairs), independent of trajectory length."""

    def __init__(self, numbers, pairs: list[tuple[int, int]], r_max_A: float, bins: int):
        self.numbers = np.asarray(numbers)
        self.pairs = list(pairs)
        self.r_max_A = float(r_max_A)
        self.bins = int(bins)
        self.edges = np.linspace(0.0, self.r_max_A, self.bins + 1)
        self.shell_volumes = 4.0 / 3.0 * np.pi * np.diff(self.edges ** 3)
        self.counts = {p: np.zeros(self.bins) for p in self.pairs}
        self.ideal = {p: np.zeros(self.bins) for p in self.pairs}
        self.n_frames = 0
        self._neighbours = NeighborList(cutoff=self.r_max_A, full_list=False)
        # Half-open last bin. Positions read back from extxyz carry 1e-8 Å of rounding, so a replica "at" r_max
        # may land a hair below it: distances within _EDGE_RTOL of r_max count as r_max (a negligible shell).
        self._outer_edge_A = self.r_max_A * (1.0 - _EDGE_RTOL)
        # Pair-type index of each (Z_i, Z_j), symmetric; −1 for pairs not asked for. One bincount per frame.
        self._pair_type = np.full((119, 119), -1, dtype=np.int64)
        for k, (a, b) in enumerate(self.pairs):
            self._pair_type[a, b] = self._pair_type[b, a] = k

    def add(self, positions, cell) -> None:
        cell = np.asarray(cell, dtype=float)
        if half_min_width_A(cell) < self.r_max_A - 1e-9:
            raise UserError(f"RDF r_max {self.r_max_A:g} Å exceeds half the shortest cell width "
                            f"({half_min_width_A(cell):.3f} Å) of a frame; pass a smaller --rdf-rmax")
        i, j, d = self._neighbours.compute(np.asarray(positions, dtype=float), cell, True, quantities="ijd")
        kind = self._pair_type[self.numbers[i], self.numbers[j]]
        keep = (kind >= 0) & (d < self._outer_edge_A)
        bin_index = (d * (self.bins / self.r_max_A)).astype(np.int64)
        hist = np.bincount(kind[keep] * self.bins + bin_index[keep],
                           minlength=len(self.pairs) * self.bins).reshape(len(self.pairs), self.bins)
        volume = abs(np.linalg.det(cell))
        for k, (a, b) in enumerate(self.pairs):
            n_a, n_b = np.count_nonzero(self.numbers == a), np.count_nonzero(self.numbers == b)
            # The half list holds each unordered pair once: a like pair is two ordered pairs.
            self.counts[(a, b)] += 2.0 * hist[k] if a == b else hist[k]
            self.ideal[(a, b)] += n_a * (n_b - (a == b)) * self.shell_volumes / volume
        self.n_frames += 1

    def result(self) -> RDFResult:
        r = 0.5 * (self.edges[1:] + self.edges[:-1])
        g, coordination = {}, {}
        for a, b in self.pairs:
            n_a = np.count_nonzero(self.numbers == a)
            label = pair_label((a, b))
            with np.errstate(invalid="ignore", divide="ignore"):
                g[label] = np.where(self.ideal[(a, b)] > 0, self.counts[(a, b)] / self.ideal[(a, b)], 0.0)
            coordination[label] = np.cumsum(self.counts[(a, b)]) / (n_a * max(self.n_frames, 1))
        return RDFResult(r, self.edges.copy(), g, coordination, self.n_frames, self.pairs)


def radial_distribution(frames, numbers, *, pairs="auto", r_max_A: float | None = None,
                        bins: int = 200) -> RDFResult:
    """g_ab(r) from an iterable of (positions, cell) pairs (a convenience over RDFAccumulator)."""
    accumulator = None
    for positions, cell in frames:
        if accumulator is None:
            r_max = half_min_width_A(cell) if r_max_A is None else r_max_A
            chosen = species_pairs(pairs, numbers) if isinstance(pairs, str) else pairs
            accumulator = RDFAccumulator(numbers, chosen, r_max, bins)
        accumulator.add(positions, cell)
    if accumulator is None:
        raise UserError("RDF: no frames to analyse; check --skip-ps against the trajectory length")
    return accumulator.result()


def first_peak(r_A, g) -> tuple[float, float]:
    """Position (Å) and height of the first maximum of g(r): the highest point before g first falls below 1
    after exceeding it, which skips the noise of the empty core region."""
    r_A, g = np.asarray(r_A), np.asarray(g)
    above = np.flatnonzero(g > 1.0)
    if above.size == 0:
        k = int(np.argmax(g))
        return float(r_A[k]), float(g[k])
    start = above[0]
    below = np.flatnonzero(g[start:] < 1.0)
    stop = start + (below[0] if below.size else g.size - start)
    k = start + int(np.argmax(g[start:stop]))
    return float(r_A[k]), float(g[k])


def rdf_deviation(r_A, g, g_ref, r_ref_A=None) -> float:
    """∫|g − g_ref| dr / ∫ g_ref dr (module docstring) on `r_A`; a reference on another grid `r_ref_A` (e.g. from
    a reference-curves file) is interpolated onto it over the range both cover."""
    r_A, g, g_ref = np.asarray(r_A), np.asarray(g), np.asarray(g_ref)
    same_grid = r_ref_A is None or (len(r_ref_A) == len(r_A) and np.allclose(r_ref_A, r_A, rtol=1e-6, atol=0))
    if not same_grid:  # (a grid read back from a file differs from the computed one in the last digits)
        inside = r_A <= np.asarray(r_ref_A)[-1]
        r_A, g, g_ref = r_A[inside], g[inside], np.interp(r_A[inside], r_ref_A, g_ref)
    return float(np.trapezoid(np.abs(g - g_ref), r_A) / np.trapezoid(g_ref, r_A))
