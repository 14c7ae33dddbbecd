"""Write the reference-implementation fixtures of `tests/test_reference_import.py`.

    python tools/reference_fixtures.py /path/to/IBM-trajcast-checkout [--out tests/data/reference]

Given a local checkout of the reference implementation (github.com/IBM/trajcast; this script fetches nothing),
it builds small random-weight `EfficientTrajCastModel` / `TrajCastModel`s in float64 (l_max 2, 2–3 layers, tiny
widths) under several conservation settings, and with the reference code itself runs one model step and a 50-step
NVE rollout (`Forecast._make_timestep`: model, wrap into the cell, rebuild the neighbour list) of a small periodic
water box. For each case it writes

    CASE.pt    the reference state dict, as the reference's training saves it (`torch.save(model.state_dict())`)
    CASE.yaml  the architecture, as the reference reads it (`build_from_yaml`)
    CASE.npz   inputs (numbers, positions, velocities, cell, type map, Δt) and outputs (the step's displacement
               and new velocity after conservation, the rollout's positions after every step, final velocities)

Running the reference code needs torch, e3nn, ase, torch_geometric and torch-nl (`pip install --target DIR
torch_geometric torch-nl xxhash requests` and put DIR on PYTHONPATH). torch-scatter and torch-cluster have no
wheels for current torch; when they are missing this script puts two small stand-ins on the path (a sum
`scatter` via `index_add_`, and a brute-force `radius_graph` that only isolated systems would use), written to a
temporary directory and used by this process only.

float32 one-hot: the reference builds its one-hot species encoding with `.to(torch.float)`, float32 even when the
default dtype is float64, and the velocity embedding's e3nn tensor product (speed basis ⊗ one-hot) then comes
out with float32-level rounding (measured ~1e-8 relative in that embedding, ~1e-11 at the output of these tiny
models) in an otherwise float64 run. The fixtures hold the float64 computation the reference
intends: every case runs with the one-hot cast to the default dtype (a patch of `OneHotAtomTypeEncoding.forward`
in this process only). The stock float32-one-hot step is stored beside it (`stock_step_*`) so the tests can
bound the difference too.
"""

import argparse
import contextlib
import copy
import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

CASES = {
    # name: (model class, layers, conservation keys, type map Z → reference type, gate activation)
    "efficient_default": ("EfficientTrajCastModel", 2, {}, {1: 0, 8: 1}, "silu"),
    "efficient_zero_momenta": ("EfficientTrajCastModel", 3,
                               {"conserve_ang_mom": True, "net_lin_mom": [0.0, 0.0, 0.0],
                                "net_ang_mom": [0.0, 0.0, 0.0]}, {1: 0, 8: 1}, "silu"),
    "trajcast_angular": ("TrajCastModel", 2, {"conserve_ang_mom": True}, {1: 1, 8: 0}, "silu"),
    "trajcast_drift": ("TrajCastModel", 3, {"net_lin_mom": [0.02, -0.01, 0.005]}, {1: 1, 8: 0}, "sigmoid"),
}
STEPS = 50
DT_FS = 5.0
BOX_A = 7.6
N_WATERS = 8
CUTOFF_A = 3.5
RMS = [0.02, 0.01]  # displacement (Å) and velocity (Å/fs) scales of the random models


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", help="local checkout of github.com/IBM/trajcast")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests/data/reference"))
    args = parser.parse_args(argv)
    _put_reference_on_path(Path(args.reference))
    import torch

    torch.set_default_dtype(torch.float64)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for seed, (name, case) in enumerate(CASES.items()):
        write_case(out, name, *case, seed=seed)
    return 0


def architecture(layers: int, conservation: dict, gate_activation: str) -> dict:
    mlp = {"n_neurons": [6, 6], "activation": "silu"}
    arch = {"num_chem_elements": 2, "edge_cutoff": CUTOFF_A, "num_edge_rbf": 6, "num_edge_poly_cutoff": 6,
            "num_vel_rbf": 5, "vel_max": 0.08, "max_rotation_order": 2, "num_hidden_channels": 4,
            "num_mp_layers": layers, "avg_num_neighbors": 10.0, "edge_mlp_kwargs": mlp, "vel_mlp_kwargs": mlp,
            "units": "real", **conservation}
    if gate_activation != "silu":
        arch["nl_gate_kwargs"] = {"activation_scalars": {"o": "tanh", "e": "silu"},
                                  "activation_gates": {"e": gate_activation}}
    return arch


def water_box(seed: int):
    """N_WATERS randomly placed and oriented water molecules (O–H 0.96 Å) with ~thermal random velocities."""
    import ase

    rng = np.random.default_rng(seed)
    oxygens = []
    while len(oxygens) < N_WATERS:
        trial = rng.uniform(0.0, BOX_A, 3)
        gaps = [np.linalg.norm((trial - o + BOX_A / 2) % BOX_A - BOX_A / 2) for o in oxygens]
        if not gaps or min(gaps) > 2.6:
            oxygens.append(trial)
    positions, numbers = [], []
    for o in oxygens:
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        other = np.cross(axis, rng.normal(size=3))
        other /= np.linalg.norm(other)
        half = np.deg2rad(104.5) / 2
        for h in (np.cos(half) * axis + np.sin(half) * other, np.cos(half) * axis - np.sin(half) * other):
            positions.append(o + 0.96 * h)
            numbers.append(1)
        positions.append(o)
        numbers.append(8)
    atoms = ase.Atoms(numbers=numbers, positions=np.array(positions) % BOX_A, cell=np.eye(3) * BOX_A, pbc=True)
    masses = atoms.get_masses()[:, None]
    atoms.arrays["velocities"] = rng.normal(size=(len(atoms), 3)) * 0.02 / np.sqrt(masses)
    return atoms


def write_case(out: Path, name: str, model_type: str, layers: int, conservation: dict, type_map: dict,
               gate_activation: str, seed: int) -> None:
    import torch
    import yaml
    from trajcast.model import models
    from trajcast.model.forecast import Forecast

    arch = architecture(layers, conservation, gate_activation)
    torch.manual_seed(seed)
    model = getattr(models, model_type)(config=copy.deepcopy(arch), rms_targets=list(RMS))
    with torch.no_grad():  # trained frequencies move away from nπ: make the import's mapping of them count
        bessel = next(m for n, m in model.named_modules() if n.endswith("EdgeLengthEncoding")).radial_basis
        bessel.bessel_roots.add_(0.2 * torch.randn_like(bessel.bessel_roots))
    model.eval()
    atoms = water_box(seed)
    protocol = {"configuration": atoms.copy(), "model": model, "timestep": DT_FS, "type_mapper": dict(type_map),
                "run": STEPS, "units": "real"}
    protocol["configuration"].arrays["velocities"] = atoms.arrays["velocities"].copy()
    forecast = Forecast(protocol)
    stock_displacement, stock_velocity = one_step(forecast)
    with float64_one_hot():
        step_displacement, step_velocity = one_step(forecast)
        positions = []
        frame = forecast.start_graph
        with torch.no_grad():
            for step in range(1, STEPS + 1):
                frame = forecast._make_timestep(frame, step)
                positions.append(frame.pos.numpy().copy())
        final_velocities = frame.velocities.numpy().copy()
    torch.save(model.state_dict(), out / f"{name}.pt")
    (out / f"{name}.yaml").write_text(yaml.safe_dump(arch, sort_keys=False))
    np.savez_compressed(out / f"{name}.npz", numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell[:],
                        velocities=atoms.arrays["velocities"], type_map=np.array(sorted(type_map.items())),
                        dt_fs=DT_FS, model_type=model_type, step_displacement=step_displacement,
                        step_velocity=step_velocity, stock_step_displacement=stock_displacement,
                        stock_step_velocity=stock_velocity, rollout_positions=np.array(positions),
                        final_velocities=final_velocities)
    print(f"{name}: {model_type}, {layers} layers, {len(atoms)} atoms, {conservation or 'default conservation'}")


def one_step(forecast):
    """The reference's first step (after conservation) in Å and Å/fs."""
    import torch

    with torch.no_grad():
        frame = forecast.predictor(copy.deepcopy(forecast.start_graph))
    displacement, velocity = torch.split(frame.target, [3, 3], dim=1)
    return (displacement * forecast.disp_scale).numpy(), (velocity * forecast.vel_scale).numpy()


@contextlib.contextmanager
def float64_one_hot():
    """The reference's one-hot encoding cast to the default dtype (float64 here) while the block runs."""
    import torch
    from trajcast.nn import _encoding

    stock = _encoding.OneHotAtomTypeEncoding.forward

    def promoted(self, data):
        data = stock(self, data)
        data[self.output_field] = data[self.output_field].to(torch.get_default_dtype())
        return data

    _encoding.OneHotAtomTypeEncoding.forward = promoted
    try:
        yield
    finally:
        _encoding.OneHotAtomTypeEncoding.forward = stock


def _put_reference_on_path(checkout: Path) -> None:
    if not (checkout / "trajcast" / "model" / "models.py").is_file():
        sys.exit(f"{checkout} is not a checkout of github.com/IBM/trajcast (no trajcast/model/models.py)")
    sys.path.insert(0, str(checkout))
    stand_ins = Path(tempfile.mkdtemp(prefix="trajcast-stand-ins-"))
    if importlib.util.find_spec("torch_scatter") is None:
        (stand_ins / "torch_scatter.py").write_text(_SCATTER)
    if importlib.util.find_spec("torch_cluster") is None:
        (stand_ins / "torch_cluster.py").write_text(_RADIUS_GRAPH)
    sys.path.append(str(stand_ins))


_SCATTER = '''import torch


def scatter(src, index, dim=0, dim_size=None, reduce="sum"):
    assert dim == 0 and reduce == "sum", "stand-in supports the reference's sum over dim 0 only"
    size = int(index.max()) + 1 if dim_size is None else dim_size
    return torch.zeros((size, *src.shape[1:]), dtype=src.dtype, device=src.device).index_add_(0, index, src)
'''

_RADIUS_GRAPH = '''import torch


def radius_graph(x, r, batch=None, loop=False, max_num_neighbors=32):
    within = (torch.cdist(x, x) < r) & ~torch.eye(len(x), dtype=torch.bool, device=x.device)
    receivers, senders = within.nonzero(as_tuple=True)
    return torch.stack([senders, receivers])
'''

if __name__ == "__main__":
    sys.exit(main())
