"""Issue #15, `data`, `analyze` and progress output: --overwrite never deletes what this tool did not write, and
bad paths or damaged files end in one line and exit 2 naming them."""

import io

import pytest

from trajcast_dist.cli.main import main
from trajcast_dist.data.pairs import build_pairs

from test_data_pairs import write_trajectory


def one_line_error(capsys, *args, match):
    code = main([str(a) for a in args])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1, err
    assert all(word in err[0] for word in match), err[0]


@pytest.fixture
def trajectory(tmp_path):
    write_trajectory(tmp_path / "a.xyz", n_frames=6, speed=0.02)
    return tmp_path / "a.xyz"


def test_overwrite_refuses_a_directory_that_is_not_a_pair_store(trajectory, tmp_path, capsys):
    mine = tmp_path / "d"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    one_line_error(capsys, "data", "pairs", trajectory, "--dt", 1, "--out", mine, "--split", "train=1",
                   "--overwrite", match=[str(mine), "not a pair store"])
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_overwrite_refuses_a_pair_store_holding_other_files(trajectory, tmp_path):
    store = build_pairs([trajectory], 1.0, tmp_path / "s.zarr", split={"train": 1.0}, progress=False)
    (store / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="not a pair store"):
        build_pairs([trajectory], 1.0, store, split={"train": 1.0}, overwrite=True, progress=False)
    assert (store / "notes.txt").exists()


def test_out_dot_is_one_line(trajectory, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, "data", "pairs", trajectory, "--dt", 1, "--out", ".", match=["already exists"])
    one_line_error(capsys, "data", "pairs", trajectory, "--dt", 1, "--out", ".", "--overwrite",
                   match=[str(tmp_path), "not a pair store"])
    assert trajectory.exists()


def test_supercell_into_a_missing_directory_is_one_line(trajectory, tmp_path, capsys):
    out = tmp_path / "nodir" / "s.xyz"
    one_line_error(capsys, "data", "supercell", trajectory, "--repeat", 1, 1, 2, "--out", out,
                   match=[str(out), "does not exist"])


@pytest.mark.parametrize("damage", ["truncated", "no attributes"])
def test_info_on_a_damaged_store_is_one_line(trajectory, tmp_path, capsys, damage):
    store = build_pairs([trajectory], 1.0, tmp_path / "s.zarr", split={"train": 1.0}, progress=False)
    text = (store / "zarr.json").read_text()
    (store / "zarr.json").write_text(text[:100] if damage == "truncated"
                                     else '{"zarr_format": 3, "node_type": "group"}')
    one_line_error(capsys, "data", "info", store, match=[str(store / "zarr.json"), "damaged"])


def test_analyze_on_a_truncated_trajectory_names_the_frame(trajectory, tmp_path, capsys):
    text = trajectory.read_text()
    cut = tmp_path / "cut.xyz"
    cut.write_text(text[: len(text) - 200])  # the last frame loses its last atom lines
    one_line_error(capsys, "analyze", cut, "--out", tmp_path / "an", "--quiet", match=[str(cut), "frame 5"])


def test_progress_bars_to_a_file_are_plain_lines(trajectory, tmp_path, capsys, monkeypatch):
    from trajcast_dist import progress

    assert main(["data", "pairs", str(trajectory), "--dt", "1", "--out", str(tmp_path / "s.zarr"),
                 "--split", "train=1"]) == 0
    assert "\r" not in capsys.readouterr().err  # before: tqdm's carriage-return refreshes
    stream = io.StringIO()
    monkeypatch.setattr(progress.sys, "stderr", stream)
    monkeypatch.setattr(progress, "PLAIN_INTERVAL_S", 0.0)
    for _ in progress.progress_bar(range(3), desc="work"):
        pass
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and lines and all(line.startswith("work") for line in lines)
    assert "3/3" in lines[-1]



@pytest.mark.parametrize("command, flag, value", [
    ("pairs", "--cutoff", "0"), ("pairs", "--frame-fs", "0"), ("pairs", "--dt", "-1"), ("pairs", "--dt", "nan"),
    ("md", "--temperature", "0"), ("md", "--equilibrate-ps", "-1"), ("md", "--element-temperatures", "H=-5"),
    ("md", "--element-temperatures", "Hx=300"), ("md", "--element-temperatures", "O=hot"),
    ("analyze", "--skip-ps", "-1"), ("analyze", "--dt-fs", "0"), ("analyze", "--vacf-max-ps", "0"),
    ("analyze", "--t0", "0"), ("analyze", "--max-memory-gb", "inf")])
def test_numbers_out_of_range_are_one_line(trajectory, tmp_path, capsys, command, flag, value):
    out = tmp_path / "out"
    args = {"pairs": ["data", "pairs", trajectory, "--dt", 1, "--out", out],
            "md": ["data", "md", "water", "--out", out],
            "analyze": ["analyze", trajectory, "--out", out, "--quiet"]}[command]
    one_line_error(capsys, *args, f"{flag}={value}", match=[flag, value])
    assert not out.exists()
