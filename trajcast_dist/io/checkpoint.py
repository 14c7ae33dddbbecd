"""Model files: weights plus JSON metadata (species, cutoff, Δt, statistics, config, provenance), loaded with
`torch.load(weights_only=True)` so a model file can never execute code."""

import dataclasses
import json
from pathlib import Path

import torch

from trajcast_dist.config import ModelConfig, from_mapping
from trajcast_dist.errors import UserError
from trajcast_dist.io.atomic import atomic_path

__all__ = ["save_model", "load_model", "read_metadata"]

_FORMAT = "trajcast-dist-model-1"


def save_model(path, model, extra: dict | None = None) -> None:
    meta = {"format": _FORMAT, "species": model.species, "config": dataclasses.asdict(model.config),
            "cutoff_A": model.config.cutoff_A, "dt_fs": model.config.dt_fs,
            "dtype": str(next(model.parameters()).dtype).replace("torch.", ""), "num_weights": model.num_weights(),
            **(extra or {})}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"metadata": json.dumps(meta), "state_dict": state}, tmp)


def read_metadata(path) -> tuple[dict, dict]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(payload["metadata"])
    except Exception:
        raise UserError(f"{path} is not a trajcast-dist model file (or it is corrupted)") from None
    if meta.get("format") != _FORMAT:
        raise UserError(f"{path}: unsupported model format {meta.get('format')!r}")
    return meta, payload["state_dict"]


def load_model(path, dtype=torch.float64, device="cpu", backend: str | None = None):
    """Rebuild the model from its metadata and load the weights; returns (model, metadata)."""
    from trajcast_dist.model import TrajCast

    meta, state_dict = read_metadata(path)
    config = from_mapping(ModelConfig, meta["config"], str(path), "config")
    if backend is not None:
        config.backend = backend
    model = TrajCast(config, meta["species"])
    model.load_state_dict(state_dict)
    return model.to(dtype=dtype, device=device).eval(), meta
