"""Reading structures, writing trajectories, checkpoints and restart files (atomically)."""
