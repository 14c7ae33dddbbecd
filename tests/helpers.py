"""Small helpers shared by tests (imported as `from helpers import ...`)."""

import numpy as np
import torch

from trajcast_dist import units
from trajcast_dist.graph import build_graph


def predict(model, positions, velocities, numbers, cell, pbc):
    """(Δr, v) of a configuration as float64 numpy arrays."""
    graph = build_graph(positions, velocities, model.species_index(numbers), units.masses_amu(numbers), cell, pbc,
                        model.cutoff_A)
    with torch.no_grad():
        displacement, velocity = model(graph)
    return displacement.numpy(), velocity.numpy()


def thermal_velocities(numbers, temperature_K, seed=0):
    from trajcast_dist.dynamics.velocities import maxwell_boltzmann

    return maxwell_boltzmann(units.masses_amu(numbers), temperature_K, np.random.default_rng(seed))
