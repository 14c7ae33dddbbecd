"""The fused CPU edge kernel (issue #8, model/csrc/edge_tp_cpu.cpp) against the grouped torch implementation
it replaces. Tolerances: float64 ≤ 1e-13 of the largest pooled value (measured 1.7e-16), float32 ≤ 1e-5
(measured 3.4e-7); the result does not depend on the number of threads (bitwise)."""

import copy

import numpy as np
import pytest
import torch
from helpers import predict, thermal_velocities

from trajcast_dist import units
from trajcast_dist.graph import build_graph
from trajcast_dist.model import cpu_kernel
from trajcast_dist.model.fast import TabulatedEdgeTensorProduct


def test_kernel_builds_here():
    """CI has a compiler: a failed build would silently fall back to the 3–5× slower torch path."""
    assert cpu_kernel.edge_kernel() is not None, cpu_kernel.kernel_status()


def _layer_inputs(model, seed, dtype):
    """Random node features of the right width and a random triclinic periodic system's edges."""
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * 7.0 + rng.uniform(-0.6, 0.6, (3, 3))
    positions = rng.uniform(0, 1, (40, 3)) @ cell
    numbers = rng.choice([1, 8], 40)
    graph = build_graph(positions, thermal_velocities(numbers, 300.0, seed), model.species_index(numbers),
                        units.masses_amu(numbers), cell, True, model.cutoff_A, dtype=dtype)
    captured = {}
    layer = model.layers[1].edge_tp
    original = layer.pooled

    def capture(h, edges):
        captured.setdefault("inputs", (h, edges))
        return original(h, edges)

    layer.pooled = capture
    with torch.no_grad():
        model(graph)
    del layer.pooled
    h, edges = captured["inputs"]
    h = torch.from_numpy(rng.normal(size=tuple(h.shape))).to(dtype)
    return layer, h, edges


def _both_paths(layer: TabulatedEdgeTensorProduct, h, edges):
    with torch.no_grad():
        assert layer.uses_cpu_kernel(h)
        fused = layer.pooled(h, edges)
        layer.cpu_kernel = False
        reference = layer.pooled(h, edges)
        layer.cpu_kernel = True
    return fused, reference


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-13), (torch.float32, 1e-5)])
@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_matches_torch_path(tiny_model, dtype, tolerance, seed):
    model = copy.deepcopy(tiny_model).use_fast_inference().to(dtype)
    fused, reference = _both_paths(*_layer_inputs(model, seed, dtype))
    assert reference.abs().max() > 0
    torch.testing.assert_close(fused, reference, rtol=0, atol=tolerance * float(reference.abs().max()))


def test_kernel_with_ghost_rows_and_unsorted_edges(tiny_model):
    """The distributed driver passes more node rows (ghosts) than receivers, edges in any order."""
    model = copy.deepcopy(tiny_model).use_fast_inference()
    layer, h, edges = _layer_inputs(model, 2, torch.float64)
    ghosts = torch.randn(7, h.shape[1], dtype=h.dtype)
    order = torch.randperm(edges.edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    shuffled = edges._replace(edge_index=edges.edge_index[:, order], edge_sh=edges.edge_sh[order],
                              edge_length=edges.edge_length[order], edge_radial=edges.edge_radial[order])
    fused, reference = _both_paths(layer, torch.cat([h, ghosts]), shuffled)
    assert fused.shape[0] == h.shape[0] + 7
    torch.testing.assert_close(fused, reference, rtol=0, atol=1e-13 * float(reference.abs().max()))


def test_kernel_result_does_not_depend_on_threads(tiny_model):
    model = copy.deepcopy(tiny_model).use_fast_inference()
    layer, h, edges = _layer_inputs(model, 3, torch.float64)
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            torch.set_num_threads(1)
            one = layer.pooled(h, edges)
            torch.set_num_threads(2)
            two = layer.pooled(h, edges)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


def test_autograd_and_the_off_switch_use_the_torch_path(tiny_model):
    model = copy.deepcopy(tiny_model).use_fast_inference()
    layer, h, _ = _layer_inputs(model, 4, torch.float64)
    assert not layer.uses_cpu_kernel(h.clone().requires_grad_())
    off = copy.deepcopy(tiny_model).use_fast_inference(cpu_kernel=False)
    assert not off.layers[0].edge_tp.uses_cpu_kernel(h)
    system = (np.eye(3)[[0, 1, 2]] * 1.5, np.zeros((3, 3)), np.array([8, 1, 1]), np.eye(3) * 9.0, True)
    for a, b in zip(predict(model, *system), predict(off, *system)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


def test_needs_build_tells_a_first_build_from_a_cached_one(tmp_path):
    """The forecast CLI announces the ~30 s first build; an empty extensions directory must count as one."""
    import os
    import subprocess
    import sys

    cpu_kernel.edge_kernel()  # the default cache holds the build now
    probe = "from trajcast_dist.model import cpu_kernel; print(cpu_kernel.needs_build())"
    fresh = dict(os.environ, TORCH_EXTENSIONS_DIR=str(tmp_path))
    assert subprocess.run([sys.executable, "-c", probe], env=fresh, capture_output=True, text=True,
                          check=True).stdout.strip() == "True"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
