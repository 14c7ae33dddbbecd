"""Models shipped inside the package (no download at run time). Each `NAME.pt` has a card `NAME.md`."""

import json
from pathlib import Path

from trajcast_dist.errors import UserError

__all__ = ["shipped_models", "default_model_path", "reference_observables", "DEFAULT_MODEL", "WATER_192_MD"]

DEFAULT_MODEL = "water_dt5"
_HERE = Path(__file__).parent
# An equilibrated 192-atom SPC/Fw frame (positions and velocities) from the model's MD reference: the demo's box.
WATER_192_MD = _HERE / "water_192_md.xyz"


def shipped_models() -> dict[str, Path]:
    return {p.stem: p for p in sorted(_HERE.glob("*.pt"))}


def default_model_path() -> Path:
    models = shipped_models()
    if DEFAULT_MODEL not in models:
        raise UserError("no default model is shipped in this version; pass --model FILE "
                        "(make one with `trajcast-dist model init --config configs/tiny.yaml --species H,O --out m.pt`)")
    return models[DEFAULT_MODEL]


def reference_observables(name: str = DEFAULT_MODEL) -> dict | None:
    """MD observables the shipped model was validated against (`NAME.reference.json`), or None."""
    path = _HERE / f"{name}.reference.json"
    return json.loads(path.read_text()) if path.is_file() else None
