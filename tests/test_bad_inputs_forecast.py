"""Issue #15, forecast: bad inputs end in one line and exit 2 naming the path and the problem, nothing is lost
(outputs that are one file, stale temporaries), nothing is silently wrong (a restart continued with another
model, overlapping atoms, out-of-range numbers, a missing last frame)."""

import ase.io
import numpy as np
import pytest
import torch

from trajcast_dist.cli.main import main
from trajcast_dist.io.restart import RestartReader

from conftest import ROOT

TINY = ROOT / "configs" / "tiny.yaml"


def _model(path, *extra, config=TINY):
    assert main(["model", "init", "--config", str(config), "--species", "H,O", "--out", str(path), *extra]) == 0
    return path


@pytest.fixture
def model_file(tmp_path):
    return _model(tmp_path / "tiny.pt")


@pytest.fixture
def water_file(tmp_path):
    from trajcast_dist.structures import water_box

    path = tmp_path / "water.xyz"
    ase.io.write(path, water_box(2, 6.2, seed=1))  # 24 atoms
    return path


def forecast(capsys, *args):
    """(exit status, stdout, stderr lines) of `trajcast-dist forecast --threads 1 --quiet ARGS`."""
    code = main(["forecast", "--threads", "1", "--quiet", *map(str, args)])
    io = capsys.readouterr()
    return code, io.out, [line for line in io.err.splitlines() if line.strip()]


def refused(capsys, *args, match):
    code, _, err = forecast(capsys, *args)
    assert code == 2 and len(err) == 1, err
    assert all(word in err[0] for word in match), err[0]
    return err[0]


def steps_in(path):
    return [frame.info["step"] for frame in ase.io.read(path, ":")]


def test_output_and_restart_out_that_are_one_file_are_refused(model_file, water_file, tmp_path, capsys):
    out = tmp_path / "o.xyz"
    refused(capsys, water_file, "--model", model_file, "--steps", 1, "--output", out, "--restart-out", out,
            match=["--output", "--restart-out", "same file"])
    refused(capsys, water_file, "--model", model_file, "--steps", 1, "--output", out, "--restart-out",
            tmp_path / "." / "o.xyz", match=["same file"])
    assert not out.exists()


@pytest.mark.parametrize("where", ["missing", "directory"])
def test_output_in_a_missing_directory_or_naming_one_is_refused(model_file, water_file, tmp_path, capsys, where):
    out = tmp_path / "nodir" / "o.xyz" if where == "missing" else tmp_path
    line = refused(capsys, water_file, "--model", model_file, "--steps", 1, "--output", out, "--overwrite",
                   match=[str(out)])
    assert ("does not exist" if where == "missing" else "is a directory") in line


@pytest.mark.parametrize("flag, value", [("--temperature", "nan"), ("--temperature", "inf"), ("--tau", "nan"),
                                         ("--max-temperature-factor", "0"), ("--max-temperature-factor", "nan"),
                                         ("--max-temperature-factor", "1"), ("--seed", "-1"), ("--threads", "-2")])
def test_numbers_out_of_range_are_refused(model_file, water_file, tmp_path, capsys, flag, value):
    refused(capsys, water_file, "--model", model_file, "--steps", 1, "--output", tmp_path / "o.xyz", flag, value,
            match=[flag, value])
    assert not (tmp_path / "o.xyz").exists()


def test_overlapping_atoms_are_named_before_any_step(model_file, water_file, tmp_path, capsys):
    atoms = ase.io.read(water_file)
    atoms.positions[7] = atoms.positions[3] + [0.0, 0.0, 1e-6]
    bad = tmp_path / "overlap.xyz"
    ase.io.write(bad, atoms)
    refused(capsys, bad, "--model", model_file, "--steps", 1, "--output", tmp_path / "o.xyz",
            match=[str(bad), "atoms 3 and 7", "overlapping"])


def test_last_step_is_written_and_logged_when_steps_is_not_a_multiple_of_stride(model_file, water_file,
                                                                                  tmp_path, capsys):
    for steps, stride, frames in ((1, 10, [0, 1]), (5, 2, [0, 2, 4, 5])):
        out = tmp_path / f"o{steps}.xyz"
        code, log, _ = forecast(capsys, water_file, "--model", model_file, "--steps", steps, "--stride", stride,
                                "--output", out)
        assert code == 0
        assert steps_in(out) == frames
        assert [int(line.split()[1]) for line in log.splitlines() if line.startswith("step")] == frames
        assert RestartReader(f"{out}.restart.npz").meta["step"] == steps


def _continue(capsys, restart, *args):
    return forecast(capsys, "--restart", restart, "--steps", 2, "--output", restart.parent / "c.xyz", *args)


def test_restart_refuses_another_model_and_takes_its_own_when_none_is_given(model_file, water_file, tmp_path,
                                                                           capsys):
    import yaml

    assert forecast(capsys, water_file, "--model", model_file, "--steps", 2, "--output", tmp_path / "a.xyz")[0] == 0
    restart = tmp_path / "a.xyz.restart.npz"
    other_weights = _model(tmp_path / "seed1.pt", "--seed", "1")
    config = yaml.safe_load(TINY.read_text())
    config["model"]["dt_fs"] = 2.0
    (tmp_path / "dt2.yaml").write_text(yaml.safe_dump(config))
    other_dt = _model(tmp_path / "dt2.pt", config=tmp_path / "dt2.yaml")
    assert main(["model", "init", "--config", str(TINY), "--species", "H,C,O", "--out", str(tmp_path / "hco.pt")]) == 0
    for other, differ in ((other_weights, "weights_sha256"), (other_dt, "dt_fs"), (tmp_path / "hco.pt", "species")):
        code, _, err = _continue(capsys, restart, "--model", other)
        assert code == 2 and len(err) == 1 and differ in err[0] and str(restart) in err[0], err
    shipped = ROOT / "trajcast_dist" / "pretrained" / "water_dt5.pt"
    assert _continue(capsys, restart, "--model", shipped)[0] == 2
    assert _continue(capsys, restart)[0] == 0  # no --model: the model that wrote the restart, not the shipped one
    same = tmp_path / "same.xyz"
    assert forecast(capsys, "--restart", restart, "--steps", 2, "--output", same, "--model", model_file)[0] == 0
    assert np.array_equal(ase.io.read(same, -1).positions, ase.io.read(tmp_path / "c.xyz", -1).positions)


def test_model_file_with_broken_weights_or_metadata_is_one_line(model_file, water_file, tmp_path, capsys):
    import json

    payload = torch.load(model_file, weights_only=True)
    name = next(iter(payload["state_dict"]))
    cases = {"shape": lambda p: p["state_dict"].__setitem__(name, torch.zeros(3, 1, 7)),
             "missing": lambda p: p["state_dict"].pop(name),
             "species": lambda p: p.__setitem__("metadata", json.dumps(
                 {k: v for k, v in json.loads(p["metadata"]).items() if k != "species"}))}
    for case, damage in cases.items():
        broken = torch.load(model_file, weights_only=True)
        damage(broken)
        path = tmp_path / f"{case}.pt"
        torch.save(broken, path)
        refused(capsys, water_file, "--model", path, "--steps", 1, "--output", tmp_path / "o.xyz",
                match=[str(path), name if case != "species" else "species"])


def test_restart_is_in_place_before_its_frame_is_flushed(model_file, water_file, tmp_path, capsys, monkeypatch):
    from trajcast_dist.io import extxyz_writer

    out = tmp_path / "o.xyz"
    seen = []
    flush = extxyz_writer.ExtxyzFrameWriter.finish

    def finish(writer):
        restart = tmp_path / "o.xyz.restart.npz"
        seen.append(RestartReader(restart).meta["step"] if restart.exists() else None)
        flush(writer)

    monkeypatch.setattr(extxyz_writer.ExtxyzFrameWriter, "finish", finish)
    assert forecast(capsys, water_file, "--model", model_file, "--steps", 3, "--stride", 1, "--output", out)[0] == 0
    assert seen == [None, 1, 2, 3]  # the frame of step k is flushed only once the restart of step k is in place


def test_stale_temporaries_of_killed_runs_are_removed(model_file, water_file, tmp_path, capsys):
    dead = 2 ** 31 - 2  # beyond any pid_max: no such process
    parts = tmp_path / f".o.xyz.restart.npz.parts{dead}"
    parts.mkdir()
    (parts / "positions.npy").write_bytes(b"half")
    (tmp_path / f".o.xyz.restart.npz.tmp{dead}").write_bytes(b"half")
    assert forecast(capsys, water_file, "--model", model_file, "--steps", 1, "--output", tmp_path / "o.xyz")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_append_continuation_does_not_repeat_its_first_frame(model_file, water_file, tmp_path, capsys):
    common = ["--model", model_file, "--stride", 1, "--seed", 3]
    full, first, rest = tmp_path / "full.xyz", tmp_path / "first.xyz", tmp_path / "rest.xyz"
    assert forecast(capsys, water_file, "--steps", 5, "--output", full, *common)[0] == 0
    assert forecast(capsys, water_file, "--steps", 3, "--output", first, *common)[0] == 0
    restart = f"{first}.restart.npz"
    assert forecast(capsys, "--restart", restart, "--steps", 2, "--output", rest, "--append", *common)[0] == 0
    assert steps_in(rest) == [4, 5]
    assert first.read_bytes() + rest.read_bytes() == full.read_bytes()  # `cat first rest` is the whole run
    # in place: the run's own file grows, the first frame is not repeated
    assert forecast(capsys, "--restart", f"{rest}.restart.npz", "--steps", 1, "--output", rest, "--append",
                    *common)[0] == 0
    assert steps_in(rest) == [4, 5, 6]
    refused(capsys, water_file, "--steps", 1, "--output", tmp_path / "x.xyz", "--append", *common,
            match=["--append", "--restart"])


def test_append_repairs_what_a_kill_between_restart_and_frame_leaves(model_file, water_file, tmp_path, capsys):
    common = ["--model", model_file, "--stride", 1, "--seed", 3]
    full, cut = tmp_path / "full.xyz", tmp_path / "cut.xyz"
    assert forecast(capsys, water_file, "--steps", 4, "--output", full, *common)[0] == 0
    for leftover in ("none", "half"):  # killed before any byte of the frame, or in the middle of it
        assert forecast(capsys, water_file, "--steps", 2, "--output", cut, "--overwrite", *common)[0] == 0
        restart = RestartReader(f"{cut}.restart.npz")
        text = cut.read_bytes()
        frame = text[restart.meta["frame_start"]:]
        cut.write_bytes(text[:restart.meta["frame_start"]] + (frame[: len(frame) // 2] if leftover == "half" else b""))
        assert forecast(capsys, "--restart", restart.path, "--steps", 2, "--output", cut, "--append", *common)[0] == 0
        assert cut.read_bytes() == full.read_bytes(), leftover


def test_append_finds_the_trajectory_after_its_directory_moved(model_file, water_file, tmp_path, capsys):
    common = ["--model", model_file, "--stride", 1, "--seed", 3]
    run = tmp_path / "run"
    run.mkdir()
    assert forecast(capsys, water_file, "--steps", 3, "--output", tmp_path / "full.xyz", *common)[0] == 0
    assert forecast(capsys, water_file, "--steps", 2, "--output", run / "o.xyz", *common)[0] == 0
    moved = run.rename(tmp_path / "moved")
    assert forecast(capsys, "--restart", moved / "o.xyz.restart.npz", "--steps", 1, "--output", moved / "o.xyz",
                    "--append", *common)[0] == 0
    assert (moved / "o.xyz").read_bytes() == (tmp_path / "full.xyz").read_bytes()
