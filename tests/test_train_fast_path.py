"""The fast training path (issue #14, model/fast_train.py): grouped tensor products with autograd, the edge one
through the fused CPU kernel's hand-written backward. Against the exact e3nn path in float64: gradients of every
weight ≤ 1e-10 relative (measured ≈ 1e-15), the same loss curve over 20 optimiser steps; the kernel's backward
passes `torch.autograd.gradcheck` and does not depend on the number of threads."""

import copy

import numpy as np
import pytest
import torch
from helpers import thermal_velocities

from trajcast_dist import units
from trajcast_dist.graph import build_graph, collate
from trajcast_dist.model import cpu_kernel
from trajcast_dist.model.fast_train import GroupedEdgeTensorProduct, uses_fast_training
from trajcast_dist.training.metrics import squared_errors


def _triclinic_batch(model, seeds, dtype=torch.float64):
    """Random triclinic periodic systems of H and O with thermal velocities, batched into one graph."""
    graphs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        cell = np.eye(3) * 7.5 + rng.uniform(-0.8, 0.8, (3, 3))
        numbers = rng.choice([1, 8], 36)
        graphs.append(build_graph(rng.uniform(0, 1, (36, 3)) @ cell, thermal_velocities(numbers, 300.0, seed),
                                  model.species_index(numbers), units.masses_amu(numbers), cell, True,
                                  model.cutoff_A, dtype=dtype))
    return collate(graphs)


def _loss_and_grads(model, graph):
    model.zero_grad()
    displacement, velocity = model(graph)
    loss = (displacement ** 2).sum() + (velocity * torch.sin(velocity)).sum()
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("cpu_kernel_on", [True, False], ids=["kernel", "torch"])
@pytest.mark.parametrize("seeds", [(0,), (1, 2)])
def test_gradients_match_the_exact_path(tiny_model, cpu_kernel_on, seeds):
    model = copy.deepcopy(tiny_model).train()
    graph = _triclinic_batch(model, seeds)
    loss_exact, exact = _loss_and_grads(model, graph)
    model.use_fast_training(cpu_kernel=cpu_kernel_on)
    assert model.layers[0].edge_tp.uses_cpu_kernel(graph.positions, graph.positions) == cpu_kernel_on
    loss_fast, fast = _loss_and_grads(model, graph)
    torch.testing.assert_close(loss_fast, loss_exact, rtol=1e-12, atol=0)
    assert exact.keys() == fast.keys()
    for name in exact:
        scale = float(exact[name].abs().max())
        assert scale > 0, f"{name} has no gradient: the test would not see a wrong one"
        assert float((fast[name] - exact[name]).abs().max()) <= 1e-10 * scale, name


def _kernel_inputs(model, seed, dtype=torch.float64):
    """The edge layer of a fast-training tiny model and random node features, per-edge weights and Y."""
    layer = model.layers[1].edge_tp
    graph = _triclinic_batch(model, (seed,), dtype)
    vectors = graph.edge_vectors
    from e3nn import o3

    sh = o3.spherical_harmonics(model.irreps_sh, vectors, normalize=True, normalization="component")
    rng = np.random.default_rng(seed)
    h = torch.from_numpy(rng.normal(size=(graph.n_nodes, layer.irreps_in.dim))).to(dtype)
    weights = torch.from_numpy(rng.normal(size=(vectors.shape[0], layer.grouped.weight_numel))).to(dtype)
    return layer, graph.edge_index, sh, h, weights


def test_kernel_backward_passes_gradcheck(tiny_model):
    """Numerical vs analytical Jacobian on a small random graph (6 nodes, 15 edges: the Jacobian is dense)."""
    model = copy.deepcopy(tiny_model).use_fast_training()
    layer = model.layers[1].edge_tp
    generator = torch.Generator().manual_seed(5)
    senders, receivers = torch.randint(0, 6, (2, 15), generator=generator)
    from e3nn import o3

    sh = o3.spherical_harmonics(model.irreps_sh, torch.randn(15, 3, generator=generator, dtype=torch.float64),
                                normalize=True, normalization="component")
    h = torch.randn(6, layer.irreps_in.dim, generator=generator, dtype=torch.float64)
    nodes = [x.detach().clone().requires_grad_() for x in layer.grouped.split_nodes(h)]
    # 15 edges reading 8 weight rows, most of them shared (as the two directions of a pair share one)
    rows = torch.randint(0, 8, (15,), generator=generator)
    w = torch.randn(8, layer.grouped.weight_numel, generator=generator, dtype=torch.float64, requires_grad=True)

    def pooled(w, *nodes):
        return cpu_kernel.EdgeTPFunction.apply(layer.grouped, senders, receivers, sh, rows, w, *nodes)

    assert torch.autograd.gradcheck(pooled, (w, *nodes), eps=1e-6, atol=1e-9, rtol=1e-7)


def test_kernel_training_result_does_not_depend_on_threads(tiny_model):
    model = copy.deepcopy(tiny_model).use_fast_training()
    layer, edge_index, sh, h, weights = _kernel_inputs(model, 4)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            w = weights.clone().requires_grad_()
            x = h.clone().requires_grad_()
            rows = torch.arange(len(w)).flip(0)
            parts = cpu_kernel.EdgeTPFunction.apply(layer.grouped, edge_index[0], edge_index[1], sh, rows, w.flip(0),
                                                    *layer.grouped.split_nodes(x))
            out = layer.grouped.assemble(list(parts))
            (out * torch.cos(out)).sum().backward()
            results.append((out.detach(), w.grad, x.grad))
    finally:
        torch.set_num_threads(threads)
    for one, two in zip(*results):
        assert torch.equal(one, two)


def test_twenty_optimiser_steps_give_the_same_loss_curve(tiny_model):
    """Adam + AMSGrad as in training, 20 steps on fresh random batches: the fast path follows the exact one."""
    curves = {}
    for path in ("exact", "fast"):
        model = copy.deepcopy(tiny_model).train()
        if path == "fast":
            model.use_fast_training()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
        losses = []
        for step in range(20):
            graph = _triclinic_batch(model, (100 + step,))
            displacement, velocity = model(graph)
            target_d, target_v = 0.01 * graph.velocities * 5.0, 0.9 * graph.velocities
            sse_d, sse_v = squared_errors(displacement, velocity, target_d, target_v, 0.05, 0.01)
            loss = 0.5 * (sse_d + sse_v) / (3 * graph.n_nodes)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
        curves[path] = np.array(losses)
    assert curves["exact"][-1] < curves["exact"][0]  # it learns: the comparison is not of two flat lines
    np.testing.assert_allclose(curves["fast"], curves["exact"], rtol=1e-9, atol=0)


def test_the_swap_keeps_parameters_and_state_dict(tiny_model):
    model = copy.deepcopy(tiny_model)
    names, keys = [n for n, _ in model.named_parameters()], list(model.state_dict())
    model.use_fast_training()
    assert uses_fast_training(model) and isinstance(model.layers[0].edge_tp, GroupedEdgeTensorProduct)
    assert [n for n, _ in model.named_parameters()] == names and list(model.state_dict()) == keys
    model.use_exact()
    assert not uses_fast_training(model)
    model.use_fast_inference()
    model.use_fast_training()  # from the inference path too: no tables left behind
    assert uses_fast_training(model) and not model.fast
