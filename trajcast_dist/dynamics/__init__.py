"""Dynamics: initial velocities, the CSVR thermostat, instability checks and the serial rollout."""
