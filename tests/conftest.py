"""Shared fixtures. Tests run on 2 CPU cores: one torch thread per process avoids oversubscription."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# Subprocesses (CLI, mpiexec) must find the venv's executables first.
os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def tiny_config():
    from trajcast_dist.config import load_config

    return load_config(ROOT / "configs" / "tiny.yaml").model


@pytest.fixture
def tiny_scales():
    from trajcast_dist.config import load_config

    return load_config(ROOT / "configs" / "tiny.yaml").scales


@pytest.fixture
def tiny_model(tiny_config, tiny_scales):
    """An untrained tiny water model (H, O) in float64 with fixed weights."""
    from trajcast_dist.model import TrajCast

    torch.manual_seed(0)
    return TrajCast(tiny_config, [1, 8], scales=tiny_scales).to(torch.float64).eval()


@pytest.fixture
def water():
    from trajcast_dist.structures import water_box

    return water_box(seed=1)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
