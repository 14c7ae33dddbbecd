"""Model files: weights plus JSON metadata (species, cutoff, Δt, architecture, scales, provenance), loaded with
`torch.load(weights_only=True)` so a model file can never execute code."""

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from trajcast_dist.config import stored_model
from trajcast_dist.errors import UserError, read_user_file
from trajcast_dist.io.atomic import atomic_path

__all__ = ["save_model", "copy_with_metadata", "load_model", "read_metadata", "weights_sha256", "model_record",
           "describe_gains", "describe_position_noise"]

_FORMAT = "trajcast-dist-model-1"
_REQUIRED = ("species", "config", "cutoff_A", "dt_fs")


def save_model(path, model, extra: dict | None = None) -> None:
    meta = {"format": _FORMAT, "species": model.species, "config": dataclasses.asdict(model.config),
            "scales": dataclasses.asdict(model.scales),
            "cutoff_A": model.config.cutoff_A, "dt_fs": model.config.dt_fs,
            "dtype": str(next(model.parameters()).dtype).replace("torch.", ""), "num_weights": model.num_weights(),
            **(extra or {})}
    _write(path, meta, {k: v.detach().cpu() for k, v in model.state_dict().items()})


def copy_with_metadata(path, out, updates: dict) -> None:
    """A copy of model file `path` at `out` with metadata keys set; the weights go back exactly as read."""
    meta, state = read_metadata(path)
    _write(out, {**meta, **updates}, state)


def _write(path, meta: dict, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"metadata": json.dumps(meta), "state_dict": state}, tmp)


def read_metadata(path) -> tuple[dict, dict]:
    payload = read_user_file(path, "model file", lambda p: torch.load(p, map_location="cpu", weights_only=True))
    try:
        meta = json.loads(payload["metadata"])
    except Exception:
        raise UserError(f"{path} is not a trajcast-dist model file (or it is corrupted)") from None
    if meta.get("format") != _FORMAT:
        raise UserError(f"{path}: unsupported model format {meta.get('format')!r}")
    missing = [key for key in _REQUIRED if key not in meta]
    if missing or not isinstance(payload.get("state_dict"), dict):
        what = f"metadata field {missing[0]!r}" if missing else "weights"
        raise UserError(f"{path}: the model file has no {what}; it is corrupted or was not written by trajcast-dist")
    return meta, payload["state_dict"]


def model_record(path, meta: dict) -> dict:
    """The identity of a loaded model (`load_model`'s metadata), as a restart stores it: a run continues only
    with the model that wrote it."""
    return {"file": str(Path(path).resolve()), "weights_sha256": meta["weights_sha256"],
            "dt_fs": float(meta["dt_fs"]), "species": [int(z) for z in meta["species"]],
            "cutoff_A": float(meta["cutoff_A"]), "velocity_gain": meta.get("velocity_gain"),
            **({"position_noise_A": meta["position_noise_A"]} if meta.get("position_noise_A") else {})}


def weights_sha256(state_dict: dict) -> str:
    """Hash of the weights as stored (names, dtypes, shapes, values): the model's identity, whatever dtype it
    is later cast to."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def load_model(path, dtype=torch.float64, device="cpu", backend: str | None = None):
    """Rebuild the model from its metadata and load the weights; returns (model, metadata). The metadata
    gains `weights_sha256` (see `weights_sha256`)."""
    from trajcast_dist.model import TrajCast

    meta, state_dict = read_metadata(path)
    config, scales = stored_model(meta["config"], meta.get("scales"), str(path))
    model = TrajCast(config, meta["species"], backend or "e3nn", scales)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:  # missing, unexpected or wrongly shaped tensors
        detail = " ".join(str(err).split())
        raise UserError(f"{path}: the weights do not fit the model its metadata describes ({detail[:300]}); "
                        "the file is corrupted or was edited") from None
    model.set_velocity_gain(meta.get("velocity_gain"))
    model.set_position_noise(meta.get("position_noise_A"))
    meta["weights_sha256"] = weights_sha256(state_dict)
    return model.to(dtype=dtype, device=device).eval(), meta


def describe_gains(gains: dict | None) -> str:
    """'H×1.00336 O×1.00247' for {atomic number: gain} (keys may be strings, as in the metadata); '' if all 1."""
    from ase.data import chemical_symbols

    gains = {int(z): float(g) for z, g in (gains or {}).items()}
    return " ".join(f"{chemical_symbols[z]}×{g:.5f}" for z, g in gains.items()) if any(
        g != 1.0 for g in gains.values()) else ""


def describe_position_noise(sigma: float | dict | None) -> str:
    """'0.00283 Å' for one σ (a number, or the same for every element), 'H 0.00283 O 0.000707 Å' per element
    ({atomic number: σ}); '' if none."""
    from ase.data import chemical_symbols

    if isinstance(sigma, dict) and len(set(sigma.values())) > 1:
        return " ".join(f"{chemical_symbols[int(z)]} {float(v):.3g}" for z, v in sigma.items()) + " Å"
    value = next(iter(sigma.values()), 0.0) if isinstance(sigma, dict) else sigma
    return f"{float(value):.3g} Å" if value else ""
