"""Models shipped inside the package (no download at run time). Each `NAME.pt` has a card `NAME.md`."""

from pathlib import Path

from trajcast_dist.errors import UserError

__all__ = ["shipped_models", "default_model_path", "DEFAULT_MODEL"]

DEFAULT_MODEL = "water_dt5"
_HERE = Path(__file__).parent


def shipped_models() -> dict[str, Path]:
    return {p.stem: p for p in sorted(_HERE.glob("*.pt"))}


def default_model_path() -> Path:
    models = shipped_models()
    if DEFAULT_MODEL not in models:
        raise UserError("no default model is shipped in this version; pass --model FILE "
                        "(make one with `trajcast-dist model init --config configs/tiny.yaml --species H,O --out m.pt`)")
    return models[DEFAULT_MODEL]
