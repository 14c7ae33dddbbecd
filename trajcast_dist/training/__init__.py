"""Distributed training of TrajCast (issue #5): loop, sampler, loss and metrics, checkpoints, engines."""

from trajcast_dist.training.loop import TrainResult, prepare, train

__all__ = ["train", "prepare", "TrainResult"]
