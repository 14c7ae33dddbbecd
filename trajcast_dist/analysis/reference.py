"""Reference curves: an MD run's RDF, VACF (→ VDOS), MSD and temperature in one small JSON file.

Written by `trajcast-dist analyze MD.xyz --export-reference FILE`; read back wherever an MD trajectory is accepted
as `--reference`, so a forecast can be judged against MD that is not on the machine (the shipped model's file sits
beside its card in trajcast_dist/pretrained/). The VDOS is not stored: it is recomputed from the VACF with the
same transform (`vdos.vdos_from_vacf`), which also lets a short forecast be compared at its own resolution.
Values are rounded to `_DIGITS` significant digits and the temperature trace is thinned to at most
`_TRACE_POINTS` points (its statistics come from every frame) to keep the file ≈ 100 kB.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trajcast_dist.analysis.msd import MSDResult
from trajcast_dist.analysis.rdf import RDFResult
from trajcast_dist.analysis.temperature import TemperatureResult
from trajcast_dist.analysis.vdos import vdos_from_vacf
from trajcast_dist.errors import UserError, read_user_file

__all__ = ["FORMAT", "write_reference_curves", "read_reference_curves", "is_reference_curves"]

FORMAT = "trajcast-dist reference curves 1"
_DIGITS = 6
_TRACE_POINTS = 1000


def is_reference_curves(path) -> bool:
    return Path(path).suffix == ".json"


def write_reference_curves(path, result, source: str, settings: dict, overwrite: bool = False) -> Path:
    """Store the curves of an analysed set (`result` has .rdf/.vdos/.msd/.temperature, each possibly None)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"--export-reference {path}: file exists; pass --overwrite or choose a new name")
    data = {"format": FORMAT, "source": source, "files": [Path(p).name for p in result.paths],
            "n_atoms": result.n_atoms, "n_frames": result.n_frames, "dt_fs": result.dt_fs, "settings": settings}
    for name, encode in (("rdf", _rdf_data), ("vdos", _vacf_data), ("msd", _msd_data),
                         ("temperature", _temperature_data)):
        if getattr(result, name) is not None:
            data[name] = encode(getattr(result, name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    return path


def read_reference_curves(path) -> dict:
    """The stored curves as the analysis' own result objects: keys source, paths, n_atoms, n_frames, dt_fs and
    rdf, vdos, msd, temperature (None where the file has none)."""
    path = Path(path)
    data = read_user_file(path, "reference-curves file (JSON)", lambda p: json.loads(p.read_text()))
    if data.get("format") != FORMAT:
        raise UserError(f"{path}: format {data.get('format')!r} is not {FORMAT!r}; "
                        "write it with `trajcast-dist analyze MD.xyz --export-reference FILE`")
    return {"source": data["source"], "paths": [str(path)], "n_atoms": data["n_atoms"],
            "n_frames": data["n_frames"], "dt_fs": data["dt_fs"],
            "rdf": _rdf(data["rdf"]) if "rdf" in data else None,
            "vdos": _vdos(data["vdos"]) if "vdos" in data else None,
            "msd": _msd(data["msd"]) if "msd" in data else None,
            "temperature": _temperature(data["temperature"]) if "temperature" in data else None}


def _rounded(values) -> list[float]:
    return [float(f"{x:.{_DIGITS}g}") for x in np.asarray(values, dtype=float)]


def _rdf_data(rdf: RDFResult) -> dict:
    return {"edges_A": _rounded(rdf.edges_A[[0, -1]]), "bins": int(rdf.r_A.size), "n_frames": rdf.n_frames,
            "g": {k: _rounded(v) for k, v in rdf.g.items()},
            "coordination": {k: _rounded(v) for k, v in rdf.coordination.items()}}


def _rdf(data: dict) -> RDFResult:
    edges = np.linspace(*data["edges_A"], data["bins"] + 1)
    return RDFResult(0.5 * (edges[1:] + edges[:-1]), edges, {k: np.array(v) for k, v in data["g"].items()},
                     {k: np.array(v) for k, v in data["coordination"].items()}, data["n_frames"])


def _vacf_data(vdos) -> dict:
    return {"dt_fs": float(vdos.lag_fs[1] - vdos.lag_fs[0]), "vacf": {k: _rounded(v) for k, v in vdos.vacf.items()}}


def _vdos(data: dict):
    return vdos_from_vacf({k: np.array(v) for k, v in data["vacf"].items()}, data["dt_fs"])


def _msd_data(msd: MSDResult) -> dict:
    return {"dt_fs": float(msd.lag_fs[1] - msd.lag_fs[0]), "msd_A2": {k: _rounded(v) for k, v in msd.msd.items()},
            "msd_err_A2": {k: _rounded(v) for k, v in msd.msd_err.items()}, "D": msd.D, "D_err": msd.D_err,
            "slope_exponent": msd.slope_exponent, "fit_window_fs": list(msd.fit_window_fs),
            "n_segments": msd.n_segments}


def _msd(data: dict) -> MSDResult:
    msd = {k: np.array(v) for k, v in data["msd_A2"].items()}
    lags = next(iter(msd.values())).size
    return MSDResult(np.arange(lags) * data["dt_fs"], msd, {k: np.array(v) for k, v in data["msd_err_A2"].items()},
                     data["D"], data["D_err"], data["slope_exponent"], tuple(data["fit_window_fs"]),
                     data["n_segments"])


def _temperature_data(t: TemperatureResult) -> dict:
    step = max(1, -(-t.time_fs.size // _TRACE_POINTS))
    return {"time_fs": _rounded(t.time_fs[::step]), "temperature_K": _rounded(t.temperature_K[::step]),
            "species_temperature_K": {k: _rounded(v[::step]) for k, v in t.species_temperature_K.items()},
            "mean_K": t.mean_K, "sigma_K": t.sigma_K, "t0_K": t.t0_K, "sigma_canonical_K": t.sigma_canonical_K,
            "n_dof": t.n_dof, "species_mean_K": t.species_mean_K}


def _temperature(data: dict) -> TemperatureResult:
    return TemperatureResult(np.array(data["time_fs"]), np.array(data["temperature_K"]), data["mean_K"],
                             data["sigma_K"], data["t0_K"], data["sigma_canonical_K"], data["n_dof"],
                             {k: np.array(v) for k, v in data["species_temperature_K"].items()},
                             data["species_mean_K"])
