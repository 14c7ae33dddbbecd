"""`benchmarks/validation_table.py`: the rows and ranges of docs/validation.md from validate_model run directories."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "validation_table.py"


def _run_dir(root: Path, name: str, t_h: float, t_o: float, d: float, frames: int = 19601) -> Path:
    mean = (2 * t_h + t_o) / 3  # two H per O, equal degrees of freedom per atom
    summary = {"forecast": {"n_frames": frames, "dt_fs": 5.0}, "settings": {"t0_K": 300.0, "skip_ps": 2.0},
               "temperature": {"forecast": {"mean_K": mean, "species_mean_K": {"H": t_h, "O": t_o}}},
               "rdf": {"O-O": {"forecast": {"peak_g": 3.25}, "reference": {"peak_g": 3.21}, "deviation": 0.01},
                       "O-H": {"forecast": {"peak_g": 33.4}, "reference": {"peak_g": 30.95}}},
               "vdos": {"all": {"overlap": 0.92}, "H": {"overlap": 0.90}},
               "diffusion": {"O": {"forecast": {"D": d, "err": 0.2}, "reference": {"D": 1.80}}}}
    (root / name / "analysis").mkdir(parents=True)
    (root / name / "analysis" / "summary.json").write_text(json.dumps(summary))
    return root / name


def _table(*runs: Path, steps: int = 20000) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, runs), "--steps", str(steps)],
                          capture_output=True, text=True, timeout=120)


def test_rows_and_ranges_judge_each_run_by_the_issue_bounds(tmp_path):
    inside = _run_dir(tmp_path, "md11", 297.0, 307.0, 1.62)
    apart = _run_dir(tmp_path, "lattice17", 294.0, 311.5, 1.98)  # |T_H − T_O| / T 0.058
    result = _table(inside, apart)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2] == ("| md11 | 300.3 | 297 / 307 | 0.033 | 3.25 | 0.010 | 0.920 (0.900) | 33.4 "
                        "| 1.62 ± 0.20 (−10 %) | 7 of 7 |")
    assert lines[3].endswith("| 1.98 ± 0.20 (+10 %) | **6 of 7** (\\|T_H − T_O\\| / T) |")
    assert lines[-1].startswith("2 runs, every bound met in 1 of 2: T 299.8–300.3 K")
    assert "|T_H − T_O| / T 0.033–0.058" in lines[-1] and "D_O −10…+10 % (mean 1.80 ± 0.18, +0.0 %)" in lines[-1]


def test_a_run_that_stopped_early_is_unstable_against_the_steps_asked(tmp_path):
    short = _run_dir(tmp_path, "md1", 297.0, 307.0, 1.8, frames=9601)
    assert "(stable (frames))" in _table(short).stdout
    assert "| 7 of 7 |" in _table(short, steps=10000).stdout


def test_a_directory_without_a_summary_is_one_line_naming_it(tmp_path):
    result = _table(tmp_path / "missing")
    assert result.returncode != 0 and "missing/analysis/summary.json not found" in result.stderr
