"""Restart files: the full state plus the thermostat's random-generator state, written atomically, so
`--restart` continues a killed or finished run bit for bit (also with a different number of ranks)."""

import json
from pathlib import Path

import numpy as np

from trajcast_dist.dynamics.state import SystemState
from trajcast_dist.errors import UserError
from trajcast_dist.io.atomic import atomic_path

__all__ = ["save_restart", "load_restart"]

_FORMAT = "trajcast-dist-restart-1"


def save_restart(path, state: SystemState, rng_state: dict, settings: dict) -> None:
    meta = {"format": _FORMAT, "step": state.step, "time_fs": state.time_fs, "rng_state": rng_state,
            "settings": settings}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, positions=state.positions, velocities=state.velocities, numbers=state.numbers,
                     cell=state.cell, pbc=state.pbc, image=state.image, ids=state.ids,
                     meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def load_restart(path) -> tuple[SystemState, dict, dict]:
    """Return (state, rng_state, settings)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"restart file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            arrays = {k: data[k] for k in ("positions", "velocities", "numbers", "cell", "pbc", "image", "ids")}
    except Exception:
        raise UserError(f"{path} is not a trajcast-dist restart file") from None
    if meta.get("format") != _FORMAT:
        raise UserError(f"{path}: unsupported restart format {meta.get('format')!r}")
    order = np.argsort(arrays["ids"], kind="stable")  # distributed runs may store atoms in rank order
    state = SystemState(positions=arrays["positions"][order], velocities=arrays["velocities"][order],
                        numbers=arrays["numbers"][order], cell=arrays["cell"], pbc=arrays["pbc"],
                        image=arrays["image"][order], ids=arrays["ids"][order], step=int(meta["step"]),
                        time_fs=float(meta["time_fs"]))
    return state, meta["rng_state"], meta["settings"]
