"""A plain (non-editable) wheel install, used from a directory that is not the checkout: every file the library
reads (configs, the shipped model and its MD curves, the CPU kernel source) must come from the installed package."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv holding only the trajcast-dist wheel; torch & co. come from this interpreter's site-packages
    through a .pth line (a plain path line: the editable install's finder there is not activated)."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to copy the checkout")
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    # A copy of the committed and working-tree files, without build leftovers of the checkout.
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():
            target.symlink_to(os.readlink(ROOT / name))
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
         str(root / "dist"), str(source)], root)
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    root).stdout.strip())
    site.joinpath("parent_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next((root / "dist").glob("trajcast_dist-*.whl"))
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)], root)
    empty = root / "elsewhere"
    empty.mkdir()
    return venv / "bin", empty


def run(command, cwd, env=None):
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def clean_env(bin_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.slow
def test_wheel_install_runs_model_list_forecast_and_bench_from_an_empty_directory(installed):
    bin_dir, empty = installed
    env = clean_env(bin_dir)
    where = run([bin_dir / "python", "-c", "import trajcast_dist; print(trajcast_dist.__file__)"], empty, env)
    assert str(bin_dir.parent) in where.stdout, where.stdout     # the wheel's copy, not the checkout
    listed = run([bin_dir / "trajcast-dist", "model", "list"], empty, env).stdout
    assert "water_dt5" in listed
    run([bin_dir / "python", "-c", "import ase.io; from trajcast_dist.pretrained import WATER_192_MD; "
         "ase.io.write('water.xyz', ase.io.read(WATER_192_MD))"], empty, env)
    run([bin_dir / "trajcast-dist-forecast", "water.xyz", "--steps", "2", "--output", "out.xyz", "--seed", "0",
         "--quiet"], empty, env)
    assert (empty / "out.xyz").stat().st_size > 0
    bench = run([bin_dir / "trajcast-dist", "bench", "forecast", "--atoms", "24", "--steps", "1"], empty, env)
    assert "| 24 |" in bench.stdout
    run([bin_dir / "trajcast-dist", "model", "init", "--config", "tiny", "--species", "H,O", "--out", "t.pt"],
        empty, env)


def test_config_names_resolve_to_the_shipped_files_and_paths_win(tmp_path, monkeypatch):
    from trajcast_dist.config import load_config, resolve_config, shipped_configs
    from trajcast_dist.errors import UserError

    monkeypatch.chdir(tmp_path)
    assert {"tiny", "water", "water_cpu", "quartz_cpu"} <= set(shipped_configs())
    assert resolve_config("tiny") == resolve_config("tiny.yaml") == shipped_configs()["tiny"]
    assert load_config("tiny").model == load_config(ROOT / "configs" / "tiny.yaml").model
    (tmp_path / "tiny.yaml").write_text("model:\n  num_layers: 1\n")
    assert resolve_config("tiny.yaml") == Path("tiny.yaml") and load_config("tiny.yaml").model.num_layers == 1
    with pytest.raises(UserError, match="nope.yaml not found; give a YAML path or a shipped name"):
        resolve_config("nope.yaml")
