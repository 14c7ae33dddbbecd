"""`trajcast-dist forecast` and `trajcast-dist model` end to end, and every bad input → one line, exit 2,
nothing overwritten."""

import re
import subprocess
import sys

import ase.io
import numpy as np
import pytest
from ase import Atoms

from trajcast_dist import units
from trajcast_dist.cli.main import main

TINY = "configs/tiny.yaml"


@pytest.fixture
def model_file(tmp_path):
    from conftest import ROOT

    path = tmp_path / "tiny.pt"
    assert main(["model", "init", "--config", str(ROOT / TINY), "--species", "H,O", "--out", str(path)]) == 0
    return path


@pytest.fixture
def water_file(tmp_path, water):
    path = tmp_path / "water.xyz"
    ase.io.write(path, water)
    return path


def _run(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr()


def test_forecast_writes_frames_log_and_restart(model_file, water_file, tmp_path, capsys):
    out = tmp_path / "traj.xyz"
    code, io = _run(["forecast", water_file, "--model", model_file, "--steps", 4, "--stride", 2,
                     "--output", out, "--threads", 1], capsys)
    assert code == 0, io.err
    frames = ase.io.read(out, ":")
    assert [f.info["step"] for f in frames] == [0, 2, 4]
    assert frames[-1].info["time_fs"] == pytest.approx(20.0)
    assert "temperature_K" in frames[-1].info and "image" in frames[-1].arrays
    assert "ns/day" in io.out
    assert (tmp_path / "traj.xyz.restart.npz").is_file()
    # the log's per-element temperatures are those `analyze` computes from the written frame
    from trajcast_dist.analysis.temperature import degrees_of_freedom, species_temperatures

    last = [line for line in io.out.splitlines() if line.startswith("step")][-1]
    frame = frames[-1]
    expected = species_temperatures(units.velocities_from_ase(frame.get_velocities()), units.masses_amu(frame.numbers),
                                    frame.numbers, degrees_of_freedom(len(frame), True))
    assert dict(re.findall(r"T_(\w+)=(\d+)", last)) == {k: f"{v:.0f}" for k, v in expected.items()}


def test_forecast_restart_cli_matches_uninterrupted_run(model_file, water_file, tmp_path, capsys):
    full, half, rest = tmp_path / "full.xyz", tmp_path / "half.xyz", tmp_path / "rest.xyz"
    common = ["--model", model_file, "--stride", 2, "--seed", 9, "--threads", 1]
    assert _run(["forecast", water_file, "--steps", 4, "--output", full, *common], capsys)[0] == 0
    assert _run(["forecast", water_file, "--steps", 2, "--output", half, *common], capsys)[0] == 0
    assert _run(["forecast", "--restart", f"{half}.restart.npz", "--steps", 2, "--output", rest, *common],
                capsys)[0] == 0
    a, b = ase.io.read(full, -1), ase.io.read(rest, -1)
    assert b.info["step"] == 4
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.get_velocities(), b.get_velocities())


def test_fast_path_is_the_default_and_exact_is_one_flag_away(model_file, water_file, tmp_path, capsys):
    """The header names the path; the two paths agree to ≤ 1e-9 relative in float64 (restart files hold full
    precision)."""
    from trajcast_dist.io.restart import load_restart

    finals = {}
    for flags, header in (([], "path fast (tabulated MLPs, fused CPU kernel)"),
                          (["--exact"], "path exact (e3nn tensor products)")):
        out = tmp_path / f"traj{len(flags)}.xyz"
        code, io = _run(["forecast", water_file, "--model", model_file, "--steps", 3, "--output", out,
                         "--threads", 1, *flags], capsys)
        assert code == 0, io.err
        assert header in io.out.splitlines()[0]
        finals[header] = load_restart(f"{out}.restart.npz")[0]
    fast, exact = finals.values()
    assert not np.array_equal(fast.positions, exact.positions)  # two code paths really ran
    scale = np.abs(exact.velocities).max()
    np.testing.assert_allclose(fast.velocities, exact.velocities, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(fast.positions, exact.positions, rtol=0, atol=1e-9 * np.abs(exact.positions).max())
    with pytest.raises(SystemExit) as stop:
        main(["forecast", str(water_file), "--model", str(model_file), "--steps", "1", "--fast", "--exact"])
    assert stop.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_model_info_reports_species_cutoff_dt_dtype_weights(model_file, capsys):
    code, io = _run(["model", "info", model_file], capsys)
    assert code == 0
    assert "H,O" in io.out and "4.0 Å" in io.out and "5.0 fs" in io.out and "float64" in io.out
    assert "27,896" in io.out


def test_a_model_can_name_its_thermostat_and_flags_still_win(model_file, water_file, tmp_path, capsys):
    """`model thermostat` stores the thermostat a model was validated with; `forecast` uses it (and says so) when
    no --thermostat/--tau is given, its τ only with its own thermostat; a restart keeps what the run used."""
    named = tmp_path / "named.pt"
    code, io = _run(["model", "thermostat", model_file, "--thermostat", "langevin", "--tau", 150, "--out", named],
                    capsys)
    assert code == 0, io.err
    assert "thermostat  langevin τ=150 fs" in _run(["model", "info", named], capsys)[1].out
    from trajcast_dist.io.checkpoint import load_model

    assert load_model(named)[1]["weights_sha256"] == load_model(model_file)[1]["weights_sha256"]
    cases = {(): "NVT Langevin T=300.0 K τ=150.0 fs (the model's", ("--thermostat", "csvr"): "NVT CSVR T=300.0 K τ=50.0 fs,",
             ("--tau", 80): "NVT Langevin T=300.0 K τ=80.0 fs,", ("--nve",): "NVE,"}
    for flags, header in cases.items():
        code, io = _run(["forecast", water_file, "--model", named, "--steps", 2, "--output", tmp_path / "t.xyz",
                         "--overwrite", "--quiet", *flags], capsys)
        assert code == 0 and header in io.out, (flags, io.out, io.err)
    _run(["forecast", water_file, "--model", named, "--steps", 2, "--output", tmp_path / "t.xyz", "--overwrite",
          "--quiet", "--tau", 80], capsys)
    code, io = _run(["forecast", "--restart", tmp_path / "t.xyz.restart.npz", "--steps", 2, "--output",
                     tmp_path / "u.xyz", "--quiet"], capsys)
    assert code == 0 and "NVT Langevin T=300.0 K τ=80.0 fs," in io.out, io.err
    code, io = _run(["model", "thermostat", model_file, "--thermostat", "langevin", "--tau", 150, "--out", named],
                    capsys)
    assert code == 2 and "--overwrite" in io.err


def test_a_model_can_name_its_equilibration_and_the_flag_still_wins(model_file, water_file, tmp_path, capsys):
    """`model thermostat --equilibrate-ps` makes a built box work without the flag: `forecast` equilibrates first
    under the model's thermostat or another one, not under NVE, and `--equilibrate-ps 0` turns it off."""
    named = tmp_path / "named.pt"
    code, io = _run(["model", "thermostat", model_file, "--thermostat", "csvr", "--tau", 50, "--equilibrate-ps", 0.5,
                     "--out", named], capsys)
    assert code == 0, io.err
    assert "csvr τ=50 fs, after 0.5 ps of equilibration" in _run(["model", "info", named], capsys)[1].out
    cases = {(): "NVT CSVR T=300.0 K τ=50.0 fs (the model's, the paper's) after 0.5 ps of equilibration",
             ("--thermostat", "langevin"): "NVT Langevin T=300.0 K τ=50.0 fs after 0.5 ps of equilibration",
             ("--equilibrate-ps", 0): "NVT CSVR T=300.0 K τ=50.0 fs (the model's, the paper's),",
             ("--nve",): "NVE,"}
    for flags, header in cases.items():
        code, io = _run(["forecast", water_file, "--model", named, "--steps", 2, "--output", tmp_path / "t.xyz",
                         "--overwrite", "--quiet", *flags], capsys)
        assert code == 0 and header in io.out, (flags, io.out, io.err)
    code, io = _run(["model", "thermostat", model_file, "--thermostat", "csvr", "--tau", 50, "--equilibrate-ps", -1,
                     "--out", tmp_path / "bad.pt"], capsys)
    assert code != 0 and "--equilibrate-ps" in io.err


def test_output_piped_into_a_reader_that_stops_ends_quietly():
    """`trajcast-dist ... | head`: exit 141 (as Unix tools), no traceback."""
    program = ("from trajcast_dist.errors import run_guarded; import argparse, sys; sys.exit(run_guarded("
               "lambda a: [print('step', k, flush=True) for k in range(10**6)], argparse.Namespace(), 'x'))")
    result = subprocess.run(["bash", "-c", f'{sys.executable} -c "{program}" | head -n 1; exit ${{PIPESTATUS[0]}}'],
                            capture_output=True, text=True, timeout=120)
    assert result.stdout == "step 0\n" and "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 141


def test_water_config_has_paper_size(tmp_path):
    from conftest import ROOT
    from trajcast_dist.config import load_config
    from trajcast_dist.model import TrajCast

    n = TrajCast(load_config(ROOT / "configs/water.yaml").model, [1, 8]).num_weights()
    assert 2.0e6 < n < 2.6e6  # paper: "approximately 2.2M learnable weights"


def _error(capsys, args, match):
    code, io = _run(args, capsys)
    assert code == 2
    lines = io.err.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], io.err
    return lines[0]


def test_missing_structure_file(model_file, tmp_path, capsys):
    _error(capsys, ["forecast", tmp_path / "nope.xyz", "--model", model_file, "--steps", 1,
                    "--output", tmp_path / "o.xyz"], "not found")


def test_unreadable_structure(model_file, tmp_path, capsys):
    bad = tmp_path / "bad.xyz"
    bad.write_text("this is not\na structure file\n")
    _error(capsys, ["forecast", bad, "--model", model_file, "--steps", 1, "--output", tmp_path / "o.xyz"],
           "cannot read")


def test_unknown_species(model_file, tmp_path, capsys):
    path = tmp_path / "nacl.xyz"
    ase.io.write(path, Atoms("NaCl", positions=[[0, 0, 0], [2.8, 0, 0]], cell=np.eye(3) * 5.6, pbc=True))
    _error(capsys, ["forecast", path, "--model", model_file, "--steps", 1, "--output", tmp_path / "o.xyz"],
           "contains Cl,Na but the model only knows H,O")


def test_periodic_model_rejects_structure_without_cell(model_file, tmp_path, capsys):
    path = tmp_path / "mol.xyz"
    ase.io.write(path, Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    _error(capsys, ["forecast", path, "--model", model_file, "--steps", 1, "--output", tmp_path / "o.xyz"],
           "not periodic")


def test_molecule_model_rejects_periodic_structure(tmp_path, water_file, capsys):
    from conftest import ROOT

    config = tmp_path / "mol.yaml"
    config.write_text((ROOT / TINY).read_text().replace("periodic: true", "periodic: false"))
    model = tmp_path / "mol.pt"
    assert main(["model", "init", "--config", str(config), "--species", "H,O", "--out", str(model)]) == 0
    _error(capsys, ["forecast", water_file, "--model", model, "--steps", 1, "--output", tmp_path / "o.xyz"],
           "isolated molecule")


@pytest.mark.parametrize("array", ["positions", "momenta"])
def test_nan_in_structure(model_file, tmp_path, water, array, capsys):
    water.set_velocities(np.zeros((len(water), 3)))
    water.arrays[array][3, 1] = np.nan
    path = tmp_path / "nan.xyz"
    ase.io.write(path, water)
    _error(capsys, ["forecast", path, "--model", model_file, "--steps", 1, "--output", tmp_path / "o.xyz"],
           "NaN/inf")


def test_existing_output_is_not_overwritten(model_file, water_file, tmp_path, capsys):
    out = tmp_path / "o.xyz"
    out.write_text("precious")
    _error(capsys, ["forecast", water_file, "--model", model_file, "--steps", 1, "--output", out],
           "--overwrite")
    assert out.read_text() == "precious"


@pytest.mark.parametrize("flag,value,match", [("--steps", 0, "--steps 0"), ("--steps", -3, "--steps -3"),
                                              ("--tau", 0, "--tau 0"), ("--temperature", -5, "--temperature -5")])
def test_non_positive_settings(model_file, water_file, tmp_path, flag, value, match, capsys):
    args = ["forecast", water_file, "--model", model_file, "--steps", 1, "--output", tmp_path / "o.xyz"]
    args[args.index("--steps") + 1] = 1
    _error(capsys, [*args, flag, value], match)


@pytest.mark.parametrize("text,match", [("model:\n  cutof_A: 4.0\n", "unknown key model.cutof_A"),
                                        ("model:\n  num_layers: two\n", "model.num_layers = 'two'"),
                                        ("modle:\n  num_layers: 2\n", "unknown section 'modle'"),
                                        ("model:\n  cutoff_A: -1\n", "model.cutoff_A = -1.0 must be > 0")])
def test_bad_config_names_the_key(tmp_path, text, match, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    line = _error(capsys, ["model", "init", "--config", config, "--species", "H,O", "--out", tmp_path / "m.pt"],
                  match)
    assert str(config) in line
    assert not (tmp_path / "m.pt").exists()


def test_console_scripts_are_installed():
    bin_dir = __import__("pathlib").Path(sys.executable).parent
    for name in ("trajcast-dist", "trajcast-dist-forecast"):
        result = subprocess.run([bin_dir / name, "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "forecast" in (result.stdout + result.stderr).lower()


def test_threads_follow_flag_then_omp_num_threads_then_cores(monkeypatch):
    import torch

    from trajcast_dist.runtime import set_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        set_threads(None, 1)
        assert torch.get_num_threads() == 1
        set_threads(2, 1)
        assert torch.get_num_threads() == 2
        monkeypatch.delenv("OMP_NUM_THREADS")
        set_threads(None, 64)  # more ranks than cores: still one thread
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
