"""Issue #13's bounds as `benchmarks/validate_model.py` judges them, on summaries shaped like `analyze`'s."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "validate_model", Path(__file__).resolve().parents[1] / "benchmarks" / "validate_model.py")
validate_model = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(validate_model)


def _summary(t_h: float, t_o: float, d: float = 1.8, frames: int = 19601) -> dict:
    mean = (2 * t_h + t_o) / 3  # two H per O, equal degrees of freedom per atom
    return {"forecast": {"n_frames": frames, "dt_fs": 5.0}, "settings": {"t0_K": 300.0},
            "temperature": {"forecast": {"mean_K": mean, "species_mean_K": {"H": t_h, "O": t_o}}},
            "rdf": {"O-O": {"forecast": {"peak_g": 3.25}, "reference": {"peak_g": 3.21}, "deviation": 0.01}},
            "vdos": {"all": {"overlap": 0.92}},
            "diffusion": {"O": {"forecast": {"D": d}, "reference": {"D": 1.80}}}}


def _failed(summary: dict) -> list[str]:
    return [name for name, _, _, met in validate_model.issue13_bounds(summary, 19601) if not met]


def test_a_run_inside_every_bound_meets_all_seven():
    bounds = validate_model.issue13_bounds(_summary(297.0, 307.0), 19601)
    assert len(bounds) == 7 and all(met for *_, met in bounds)


def test_h_and_o_apart_by_more_than_5_percent_of_t_fail_though_each_is_within_5_percent_of_t():
    # 294 / 311.5 K (a measured run): |T_s − T| / T ≤ 0.039, but |T_H − T_O| / T = 0.058, which the issue bounds
    assert _failed(_summary(294.0, 311.5)) == ["|T_H − T_O| / T"]


@pytest.mark.parametrize("summary, name", [
    (_summary(302.0, 309.0), "T mean [K]"),                 # 304.3 K against 300 ± 3
    (_summary(297.0, 307.0, d=2.3), "D_O [1e-9 m²/s]"),     # +28 %
    (_summary(297.0, 307.0, frames=19000), "stable (frames)"),  # stopped early
])
def test_each_bound_fails_on_its_own(summary, name):
    assert _failed(summary) == [name]
