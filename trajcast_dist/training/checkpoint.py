"""Training checkpoints (`last`, `best`): everything needed to continue exactly, written atomically by rank 0.

One file per checkpoint, loaded with `torch.load(weights_only=True)`: model and optimiser state, scheduler,
EMA, epoch and sampler position (step within the epoch), partial training sums, RNG states (torch, numpy,
python), history, the config and the training statistics. The DeepSpeed engine adds its per-rank optimiser
partitions under `deepspeed/TAG`, named in the file. `export_checkpoint` turns either into the plain model
file that `trajcast-dist forecast --model` loads.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from trajcast_dist.errors import read_user_file
from trajcast_dist.io.atomic import atomic_path

__all__ = ["save_state", "load_state", "rng_state", "set_rng_state", "export_checkpoint"]


def save_state(path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path) -> dict:
    return read_user_file(path, "checkpoint", lambda p: torch.load(p, map_location="cpu", weights_only=True),
                          "train without --resume or give the right --out")


def rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def export_checkpoint(checkpoint, out, extra: dict | None = None) -> Path:
    """Write the model of a training checkpoint (EMA weights if it has them) as a forecast model file."""
    from trajcast_dist.io.checkpoint import save_model

    state = load_state(checkpoint)
    model = build_model(state)
    save_model(out, model, {**export_metadata(state), **(extra or {})})
    return Path(out)


def build_model(state: dict):
    """The TrajCast of a checkpoint, with its (EMA, if any) weights, in the training dtype."""
    from trajcast_dist.config import stored_model
    from trajcast_dist.model import TrajCast

    config, scales = stored_model(state["config"]["model"], state["config"].get("scales"), "checkpoint")
    model = TrajCast(config, state["species"], scales=scales).to(getattr(torch, state["config"]["training"]["dtype"]))
    model.load_state_dict(state["model"])
    if state.get("ema") is not None:  # `best` keeps the exported weights; `last` its running average
        if state.get("export_weights") is not None:
            model.load_state_dict(state["export_weights"])
        else:
            with torch.no_grad():
                for p, shadow in zip(model.parameters(), state["ema"]["shadow"]):
                    p.copy_(shadow)
    return model.eval()


def export_metadata(state: dict) -> dict:
    return {"trained": True, "statistics": state["statistics"], "training": state["provenance"] | {
        "epoch": state["epoch"], "global_step": state["global_step"], "best_val_loss": state["best_val"],
        "ema": state.get("ema") is not None, "training_config": state["config"]["training"]}}


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
