"""The TrajCast model (paper Methods) and its building blocks."""

from trajcast_dist.model.trajcast import TrajCast, velocity_max

__all__ = ["TrajCast", "velocity_max"]
