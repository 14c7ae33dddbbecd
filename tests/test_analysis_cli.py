"""`trajcast-dist analyze`: runs end to end on small extxyz files; bad input exits 2 with one line."""

import json

import ase.io
import numpy as np
import pytest
from ase import Atoms

from trajcast_dist import units
from trajcast_dist.analysis import analyze, format_summary
from trajcast_dist.cli.main import main

CELL = np.diag([9.0, 9.5, 10.0])


def write_water_like(path, seed, n_frames=160, velocities=True, image=True, dt_fs=5.0, t_hydrogen=300.0):
    """8 O + 16 H random walkers at ~300 K (Maxwell–Boltzmann velocities, H at `t_hydrogen`): enough for every
    observable."""
    rng = np.random.default_rng(seed)
    numbers = np.array([8] * 8 + [1] * 16)
    masses = units.masses_amu(numbers)
    r = rng.random((24, 3)) @ CELL
    frames = []
    for k in range(n_frames):
        r = r + rng.normal(scale=0.15, size=r.shape)
        frac = np.linalg.solve(CELL.T, r.T).T
        wrapped = np.floor(frac).astype(int)
        atoms = Atoms(numbers=numbers, positions=(frac - wrapped) @ CELL, cell=CELL, pbc=True)
        if velocities:
            temperature = np.where(numbers == 1, t_hydrogen, 300.0)
            sigma = np.sqrt(units.KB_EV_PER_K * temperature / (masses * units.AMU_A2_PER_FS2_IN_EV))
            v = rng.normal(size=(24, 3)) * sigma[:, None]
            atoms.set_velocities(units.velocities_to_ase(v - masses @ v / masses.sum()))  # zero momentum
        if image:
            atoms.arrays["image"] = wrapped
        atoms.info["time_fs"] = k * dt_fs
        atoms.info["step"] = k
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("traj")
    return {"forecast": write_water_like(root / "forecast.xyz", 0),
            "reference": write_water_like(root / "md.xyz", 1, image=False),
            "no_velocities": write_water_like(root / "novel.xyz", 2, n_frames=5, velocities=False)}


def test_library_analyze_compares_forecast_with_reference(files, tmp_path):
    summary = analyze(files["forecast"], [files["reference"]], out_dir=tmp_path / "out", progress=False,
                      energy_fn=lambda frames: np.array([np.sum(a.positions[:, 2]) for a in frames]),
                      dihedrals=("0,1,2,3",), t0_K=300.0, observables=("rdf", "vdos", "msd", "temperature",
                                                                         "energy", "dihedral"))
    assert set(summary["rdf"]) == {"O-O", "O-H", "H-H"}
    assert 0.0 < summary["rdf"]["O-H"]["deviation"] < 0.5          # two ideal-gas-like runs
    assert 0.0 < summary["vdos"]["H"]["overlap"] <= 1.0
    for name in ("forecast", "reference"):
        # Gaussian steps of 0.15 Å per axis every 5 fs: D = 3·0.15²/(6·5) Å²/fs = 22.5e-9 m²/s.
        d = summary["diffusion"]["O"][name]
        assert abs(d["D"] - 22.5) < 4 * d["err"] + 3.0
        t = summary["temperature"][name]
        assert t["n_dof"] == 69 and abs(t["mean_K"] - 300.0) < 15.0
        assert abs(t["species_mean_K"]["O"] - 300.0) < 25.0 and t["equipartition_gap"] < 0.06
    assert summary["temperature"]["forecast"]["sigma_canonical_K"] == pytest.approx(np.sqrt(2 / 69) * 300)
    assert 0.0 <= summary["energy"]["histogram_overlap"] <= 1.0
    assert set(summary["dihedral"]["0-1-2-3"]) == {"forecast", "reference"}
    out = tmp_path / "out"
    for name in ("rdf.png", "vdos.png", "msd.png", "temperature.png", "energy.png", "dihedral.png",
                 "rdf.csv", "vdos_reference.csv", "msd.csv", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "summary.json").read_text())["vdos"]["O"]["overlap"] == summary["vdos"]["O"]["overlap"]
    assert "D O (1e-9 m²/s)" in format_summary(summary)


def test_a_forecast_the_force_field_refuses_keeps_every_other_observable(files, tmp_path):
    """The energy function refuses frames from step 100 on (as LAMMPS SPC/Fw refuses a broken water molecule):
    the summary notes it with the file and frames; RDF, MSD and T are still there."""
    from trajcast_dist.errors import UserError

    def refusing(frames):
        if any(a.info["step"] >= 100 for a in frames):
            raise UserError("water frame: oxygen 3 has 1 nearest hydrogens")
        return np.zeros(len(frames))

    summary = analyze(files["forecast"], out_dir=tmp_path / "out", progress=False, energy_fn=refusing)
    assert "energy" not in summary and {"rdf", "diffusion", "temperature"} <= set(summary)
    assert ("energy (forecast: forecast.xyz) not computed from analysed frame 0–159 on (water frame: oxygen 3 has 1 "
            "nearest hydrogens); the other observables use every frame") in summary["notes"]


def test_broken_equipartition_is_measured_and_noted(files, tmp_path):
    """H at 450 K, O at 300 K: T_s per element, and the summary says so."""
    hot = write_water_like(tmp_path / "hot.xyz", 3, n_frames=80, t_hydrogen=450.0)
    summary = analyze(hot, [files["reference"]], out_dir=tmp_path / "out", progress=False,
                      observables=("temperature",))
    t = summary["temperature"]["forecast"]
    assert abs(t["species_mean_K"]["H"] - 450.0) < 25.0 and abs(t["species_mean_K"]["O"] - 300.0) < 35.0
    assert t["equipartition_gap"] == pytest.approx(abs(t["species_mean_K"]["O"] - t["mean_K"]) / t["mean_K"])
    notes = [n for n in summary["notes"] if "not at one temperature" in n]
    assert len(notes) == 1 and notes[0].startswith("forecast:") and "T_H" in notes[0]
    assert "T per element (K)" in format_summary(summary)
    header = (tmp_path / "out" / "temperature.csv").read_text().splitlines()[0]
    assert header == "time_fs,temperature_K,temperature_K_H,temperature_K_O"


def test_cli_writes_outputs_and_refuses_to_overwrite(files, tmp_path, capsys):
    out = tmp_path / "analysis"
    args = ["analyze", str(files["forecast"]), "--out", str(out), "--quiet", "--skip-ps", "0.1",
            "--msd-fit-ps", "0.05", "0.1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "T mean ± σ (K)" in printed and "summary.json" in printed
    assert {"rdf.png", "vdos.png", "msd.png", "temperature.png", "summary.json"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["forecast"]["n_frames"] == 140
    assert summary["diffusion"]["O"]["forecast"]["fit_window_ps"] == [0.05, 0.1]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err
    assert main([*args, "--overwrite", "--observables", "temperature"]) == 0


@pytest.mark.parametrize("case, message", [
    ("missing", "nope.xyz not found"),
    ("no_velocities", "no velocities"),
    ("bad_rmax", "--rdf-rmax"),
    ("memory", "--max-memory-gb"),
])
def test_cli_bad_input_exits_2_with_one_line(files, tmp_path, capsys, case, message):
    path = {"missing": tmp_path / "nope.xyz"}.get(case, files.get(case, files["forecast"]))
    extra = {"bad_rmax": ["--rdf-rmax", "20"], "memory": ["--max-memory-gb", "1e-6"]}.get(case, [])
    assert main(["analyze", str(path), "--out", str(tmp_path / "o"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("trajcast-dist analyze: error:")


def test_molecule_gets_3n_minus_6_dof_and_dihedral_profile(tmp_path):
    """A non-periodic 4-atom molecule whose dihedral swings between ±60°: no RDF/MSD, F(φ) from --dihedral."""
    rng = np.random.default_rng(3)
    frames = []
    for k in range(120):
        phi = np.radians(60.0 * np.sign(np.sin(0.2 * k)) + rng.normal(scale=5.0))
        atoms = Atoms("CCCC", positions=[[1.0, 0, 0], [0, 0, 0], [0, 0, 1.5], [np.cos(phi), np.sin(phi), 1.5]])
        atoms.set_velocities(units.velocities_to_ase(rng.normal(scale=0.005, size=(4, 3))))
        atoms.info["time_fs"] = 1.0 * k
        frames.append(atoms)
    path = tmp_path / "molecule.xyz"
    ase.io.write(path, frames, format="extxyz")
    summary = analyze(path, out_dir=tmp_path / "out", progress=False, dihedrals=("0,1,2,3",), t0_K=300.0)
    assert summary["temperature"]["forecast"]["n_dof"] == 6
    assert "rdf" not in summary and "diffusion" not in summary
    assert abs(abs(summary["dihedral"]["0-1-2-3"]["forecast"]["minimum_deg"]) - 60.0) < 10.0
    assert (tmp_path / "out" / "dihedral.png").exists() and (tmp_path / "out" / "vdos.png").exists()


def test_exported_reference_curves_stand_in_for_the_md_trajectory(files, tmp_path, capsys):
    """`analyze MD --export-reference F` then `analyze forecast --reference F`: the numbers and verdicts of a
    comparison with the MD trajectory itself, up to the file's 6-digit rounding; a short forecast too."""
    curves = tmp_path / "md.json"
    export = ["analyze", str(files["reference"]), "--out", str(tmp_path / "md"), "--quiet",
              "--export-reference", str(curves), "--export-source", "test MD run"]
    assert main(export) == 0
    assert 0 < curves.stat().st_size < 200_000
    short = write_water_like(tmp_path / "short.xyz", 5, n_frames=60)
    for forecast in (files["forecast"], short):
        direct = analyze(forecast, [files["reference"]], out_dir=tmp_path / "direct", progress=False,
                         overwrite=True, blocks=3)
        via = analyze(forecast, [curves], out_dir=tmp_path / "via", progress=False, overwrite=True, blocks=3)
        assert via["reference"]["source"] == "test MD run"
        for pair, entry in direct["rdf"].items():
            assert via["rdf"][pair]["reference"]["peak_g"] == pytest.approx(entry["reference"]["peak_g"], rel=1e-5)
            assert via["rdf"][pair]["deviation"] == pytest.approx(entry["deviation"], rel=1e-4)
        for element, entry in direct["vdos"].items():
            assert via["vdos"][element]["overlap"] == pytest.approx(entry["overlap"], abs=1e-4)
        assert via["diffusion"]["O"]["reference"]["D"] != direct["diffusion"]["O"]["reference"]["D"]  # 4 vs 3 blocks
        for summary in (direct, via):  # D of the MD over the forecast's lags, whatever the lengths of the two
            entry = summary["diffusion"]["O"]
            assert entry["reference"]["fit_window_ps"] == pytest.approx(entry["forecast"]["fit_window_ps"])
        assert via["temperature"]["reference"]["species_mean_K"] == pytest.approx(
            direct["temperature"]["reference"]["species_mean_K"])
        assert [v["key"] for v in via["verdicts"]] == [v["key"] for v in direct["verdicts"]]
        assert format_summary(via).splitlines()[-1] == via["verdict"] and via["verdict"].startswith("verdict: ")
        assert {"rdf.png", "vdos.png", "msd.png", "temperature.png"} <= {p.name for p in (tmp_path / "via").iterdir()}
    assert main([*export[:3], str(tmp_path / "md2"), *export[4:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "md.json" in err and "--overwrite" in err
