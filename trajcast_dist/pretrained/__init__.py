"""Models shipped inside the package (no download at run time). Each `NAME.pt` has a card `NAME.md`."""

from pathlib import Path

from trajcast_dist.errors import UserError

__all__ = ["shipped_models", "default_model_path", "reference_curves", "DEFAULT_MODEL", "WATER_192_MD"]

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
                        "(make one with `trajcast-dist model init --config tiny --species H,O --out m.pt`)")
    return models[DEFAULT_MODEL]


def reference_curves(name: str = DEFAULT_MODEL) -> Path | None:
    """The MD reference-curves file (`NAME.reference.json`, analysis.reference) the model is judged against, or
    None; its card says which MD run made it."""
    path = _HERE / f"{name}.reference.json"
    return path if path.is_file() else None
