"""Issue #15 under `mpiexec -n 2`: outputs that are one file or cannot be written are one line and exit 2
(not a traceback per rank), and Ctrl-C is one line and exit 130 as in one process (not two tracebacks and
MPI_Abort)."""

import os
import signal
import subprocess
import time

import pytest

from test_parallel_cli import TIMEOUT_S, _env, files, forecast  # noqa: F401 — `files` is a fixture

pytestmark = pytest.mark.mpi


def _one_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    return lines[0]


def test_outputs_that_are_one_file_are_refused_on_two_ranks(files):  # noqa: F811
    line = _one_line(forecast(2, files / "water.xyz", "--model", files / "model.pt", "--steps", 1, "--output",
                              "same.xyz", "--restart-out", "same.xyz", cwd=files))
    assert "same file" in line and "--restart-out" in line
    assert not (files / "same.xyz").exists()


@pytest.mark.parametrize("output", ["nodir/o.xyz", "."])
def test_unwritable_output_is_one_line_on_two_ranks(files, output):  # noqa: F811
    line = _one_line(forecast(2, files / "water.xyz", "--model", files / "model.pt", "--steps", 1, "--output",
                              output, "--overwrite", cwd=files))
    assert output in line and ("does not exist" in line or "is a directory" in line)


def test_ctrl_c_on_two_ranks_is_one_line_and_exit_130(files, tmp_path):  # noqa: F811
    out = tmp_path / "o.xyz"
    command = ["mpiexec", "-n", "2", "trajcast-dist-forecast", str(files / "water.xyz"), "--model",
               str(files / "model.pt"), "--steps", "200", "--stride", "1", "--output", str(out), "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(),
                            start_new_session=True)  # its own process group, as a terminal's foreground job
    start = time.monotonic()
    while proc.poll() is None and not (out.exists() and out.stat().st_size > 0):
        assert time.monotonic() - start < TIMEOUT_S
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
    _, err = proc.communicate(timeout=TIMEOUT_S)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130 and lines == ["trajcast-dist forecast: interrupted"], err
