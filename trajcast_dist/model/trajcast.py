"""The TrajCast network: embeddings, K interaction layers, readout and conservation (paper Fig. 1)."""

import numpy as np
import torch
from e3nn import o3
from torch import nn

from trajcast_dist import units
from trajcast_dist.config import ModelConfig, Scales
from trajcast_dist.errors import UserError
from trajcast_dist.graph import Graph
from trajcast_dist.model.backends import get_backend, resolve_backend
from trajcast_dist.model.conservation import Conservation
from trajcast_dist.model.interaction import EdgeInputs, InteractionLayer
from trajcast_dist.model.radial import RadialEmbedding
from trajcast_dist.model.readout import Readout
from trajcast_dist.model.velocity import VelocityGaussians
from trajcast_dist.reduce import LocalReducer, Reducer

__all__ = ["TrajCast", "velocity_max"]

_LOCAL = LocalReducer()


def velocity_max(species: list[int], config: ModelConfig, scales: Scales) -> float:
    """v_max = factor × Maxwell–Boltzmann v_RMS of the lightest element (paper Methods), unless given explicitly."""
    if config.velocity_max_A_per_fs is not None:
        return float(config.velocity_max_A_per_fs)
    lightest = float(units.masses_amu(species).min())
    return config.velocity_max_factor * units.mb_vrms_A_per_fs(lightest, scales.temperature_K)


class TrajCast(nn.Module):
    """Predicts (Δr, v) over Δt for every owned atom of a `Graph`.

    `sync(h, layer)` is called after every layer; the serial driver leaves it as identity, the distributed
    driver overwrites ghost rows with their owners' features. `reducer` provides the global sums of the
    conservation step.
    """

    def __init__(self, config: ModelConfig, species: list[int], backend: str = "e3nn", scales: Scales | None = None):
        super().__init__()
        # e3nn computes Clebsch–Gordan coefficients in the default dtype at construction: build in float64 so a
        # float64 model is exact to ~1e-15 (a float32-built one is only equivariant to ~1e-8); cast afterwards.
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            self._build(config, scales or Scales(), species, backend)
        finally:
            torch.set_default_dtype(previous)

    def _build(self, config: ModelConfig, scales: Scales, species: list[int], backend: str) -> None:
        self.config, self.scales = config, scales
        self.species = [int(z) for z in species]
        if sorted(set(self.species)) != self.species:
            raise UserError(f"model species {species} must be distinct atomic numbers in increasing order")
        backend = get_backend(resolve_backend(backend))  # built on the CPU: auto is e3nn here
        num_species = len(self.species)
        hidden = o3.Irreps(config.hidden_irreps).sort().irreps.simplify()
        self.irreps_sh = o3.Irreps.spherical_harmonics(config.lmax)
        self.radial = RadialEmbedding(config.cutoff_A, config.num_bessel, config.cutoff_p, config.bessel_trainable,
                                      config.bessel_epsilon_A)
        self.velocity_embedding = VelocityGaussians(num_species, velocity_max(self.species, config, scales),
                                                    config.num_velocity_gaussians, config.velocity_basis)
        embed_in = o3.Irreps(f"{num_species + config.num_velocity_gaussians}x0e") + self.irreps_sh[1:]
        self.embedding = backend.Linear(embed_in, hidden)
        layers, irreps = [], hidden
        for _ in range(config.num_layers):
            layer = InteractionLayer(backend, irreps, hidden, self.irreps_sh, config.lmax, num_species,
                                     self.radial.dim, self.velocity_embedding.dim, config.mlp_hidden,
                                     scales.avg_num_neighbors, config.gate_activation)
            layers.append(layer)
            irreps = layer.irreps_out
        self.layers = nn.ModuleList(layers)
        species_rms = None
        if config.per_species_scale:
            species_rms = (scales.species_displacement_rms_A, scales.species_velocity_rms_A_per_fs)
            if any(values is None or len(values) != num_species for values in species_rms):
                raise UserError("model.per_species_scale needs scales.species_displacement_rms_A and "
                                f"species_velocity_rms_A_per_fs with {num_species} values (set from the training data)")
        self.readout = Readout(backend, irreps, scales.displacement_rms_A, scales.velocity_rms_A_per_fs, num_species,
                               species_rms)
        self.conservation = Conservation.from_config(config)
        self.register_buffer("atomic_numbers", torch.tensor(self.species, dtype=torch.long))
        # Per-element factor on the predicted velocity, 1 unless the model file names one (`model calibrate`,
        # training/calibration.py); not a weight: training leaves it at 1 and model files keep it in metadata.
        self.register_buffer("velocity_gain", torch.ones(num_species), persistent=False)
        # σ (Å) per element of Gaussian noise `dynamics.step` adds to every position after each step; 0 unless the
        # model file names one (`model calibrate`). A model trained on inputs with position noise σ_r and the true
        # next state as target learns E[next | noisy input] ≈ next + σ_r² ∇log p = next + σ_r² βF (Tweedie): each
        # forecast step descends the potential energy by a gradient step that MD does not take, and the liquid slowly
        # quenches. Noise of variance 2σ_r² per step makes that step an (unadjusted) overdamped Langevin step,
        # which samples exp(−βU) instead of descending it.
        self.register_buffer("position_noise_A", torch.zeros(num_species), persistent=False)

    @property
    def cutoff_A(self) -> float:
        return self.config.cutoff_A

    @property
    def dt_fs(self) -> float:
        return self.config.dt_fs

    def set_velocity_gain(self, gains: dict | None) -> None:
        """Per-element velocity factors {atomic number: gain} (missing elements 1); None resets all to 1."""
        self.velocity_gain.copy_(self._per_element(gains or {}, 1.0, "velocity gains", positive=True))

    def set_position_noise(self, sigma_A: float | dict | None) -> None:
        """Position noise σ (Å): one value for every element, or {atomic number: σ} (missing elements 0)."""
        if not isinstance(sigma_A, dict):
            sigma_A = dict.fromkeys(self.species, sigma_A or 0.0)
        self.position_noise_A.copy_(self._per_element(sigma_A, 0.0, "position noise", positive=False))

    def _per_element(self, values: dict, missing: float, what: str, positive: bool) -> torch.Tensor:
        values = {int(z): float(v) for z, v in values.items()}
        if set(values) - set(self.species) or any(not np.isfinite(v) or v < 0 or (positive and v == 0)
                                                  for v in values.values()):
            raise UserError(f"{what} {values} must be finite, {'> 0' if positive else '≥ 0'} and for the model's "
                            f"elements {self.species}")
        return torch.tensor([values.get(z, missing) for z in self.species], dtype=torch.float64)

    def species_index(self, atomic_numbers, where: str = "structure") -> np.ndarray:
        """Map atomic numbers to rows of the one-hot embedding; unknown elements are a UserError."""
        from ase.data import chemical_symbols

        atomic_numbers = np.asarray(atomic_numbers, dtype=int)
        lookup = np.full(max(max(self.species), int(atomic_numbers.max(initial=0))) + 1, -1)
        lookup[self.species] = np.arange(len(self.species))
        index = lookup[atomic_numbers]
        if (index < 0).any():
            unknown = sorted({chemical_symbols[z] for z in atomic_numbers[index < 0]})
            known = ",".join(chemical_symbols[z] for z in self.species)
            raise UserError(f"{where} contains {','.join(unknown)} but the model only knows {known}; "
                            "use a model trained on these elements")
        return index

    def forward(self, graph: Graph, sync=None, reducer: Reducer = _LOCAL):
        if self.training and self.fast:
            raise RuntimeError("the fast inference mode cannot train (its tables do not follow the weights); "
                               "call model.use_exact() first")
        species_onehot = nn.functional.one_hot(graph.species, len(self.species)).to(graph.positions.dtype)
        edge_length = graph.edge_vectors.norm(dim=-1)
        edge_sh = o3.spherical_harmonics(self.irreps_sh, graph.edge_vectors, normalize=True,
                                         normalization="component")
        edge_radial = self.radial(edge_length)
        speed = graph.velocities.norm(dim=-1)
        velocity_sh = o3.spherical_harmonics(self.irreps_sh, graph.velocities, normalize=True,
                                             normalization="component")
        velocity_embedding = self.velocity_embedding(speed, graph.species)
        edges = EdgeInputs(graph.edge_index, edge_sh, edge_radial, edge_length, speed, graph.species)
        h = self.embedding(torch.cat([species_onehot, velocity_embedding, velocity_sh[:, 1:]], dim=1))
        for k, layer in enumerate(self.layers):
            h = layer(h, species_onehot, velocity_sh, velocity_embedding, edges)
            if sync is not None:
                h = sync(h, k)
        owned = slice(0, graph.n_owned)
        displacement, velocity = self.readout(h[owned], graph.species[owned])
        if self.config.baseline == "ballistic":  # the network predicts what free flight over Δt does not give
            velocity_in = graph.velocities[owned]
            displacement, velocity = displacement + velocity_in * self.config.dt_fs, velocity + velocity_in
        velocity = velocity * self.velocity_gain[graph.species[owned]].unsqueeze(-1)
        return self.conservation(displacement, velocity, graph.positions[owned], graph.velocities[owned],
                                 graph.masses[owned], graph.batch[owned], graph.n_graphs, reducer)

    def use_fast_inference(self, **table_options) -> "TrajCast":
        """Tabulated MLPs + grouped tensor products for inference (same weights); see `model/fast.py`."""
        from trajcast_dist.model.fast import use_fast_inference

        return use_fast_inference(self, **table_options)

    def use_fast_training(self, **options) -> "TrajCast":
        """Grouped tensor products with autograd (fused CPU kernel), same weights; see `model/fast_train.py`."""
        from trajcast_dist.model.fast_train import use_fast_training

        return use_fast_training(self, **options)

    def use_exact(self) -> "TrajCast":
        """Back to the exact (reference) path."""
        from trajcast_dist.model.fast import use_exact

        return use_exact(self)

    @property
    def fast(self) -> bool:
        from trajcast_dist.model.fast import TabulatedEdgeTensorProduct

        return any(isinstance(layer.edge_tp, TabulatedEdgeTensorProduct) for layer in self.layers)

    def num_weights(self) -> int:
        return sum(p.numel() for p in self.parameters())
