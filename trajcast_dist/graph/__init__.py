"""Periodic neighbour lists and the typed graph container the model reads."""

from trajcast_dist.graph.graph import Graph, build_graph, collate

__all__ = ["Graph", "build_graph", "collate"]
