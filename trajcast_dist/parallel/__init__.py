"""Distributed forecasting: spatial decomposition, ghost atoms, per-layer halo exchange, global reductions."""
