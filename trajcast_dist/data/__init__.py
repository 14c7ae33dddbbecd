"""Reference data and training pairs (DESIGN §6; paper Methods, "Reference Data Sets" and "Training").

- `lammps_md`: reference MD with LAMMPS (`water`, `quartz`), `potential_energies` for re-evaluating frames.
- `pairs`: (x_t, x_{t+Δt}) pairs and training statistics from any ASE-readable trajectory with velocities.
- `store`: the sharded zarr v3 pair store and `PairStore`, its reader for (distributed) training.
- `supercell`: streamed supercells of a structure.
"""
