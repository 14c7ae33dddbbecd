"""Import a model trained with the reference implementation (github.com/IBM/trajcast) as a `TrajCast`.

The paper architectures `EfficientTrajCastModel` and `TrajCastModel` map onto this project's model exactly: the
options that differ (SiLU gates, Bessel ε, speed-Gaussian layout and v_max, conservation rules) are `ModelConfig`
options, and every weight maps by an exact transform:

- the reference sorts the output irreps of its tensor products: path weights (columns of the radial MLPs) and the
  linear maps after them are permuted by path, keyed by (input irrep, spherical-harmonic irrep, output irrep);
- e3nn's `FullyConnectedNet` divides each weight matrix by √fan-in and normalises SiLU to unit second moment: both
  factors move into our plain bias-free MLP weights; the Bessel prefactor 2/r_c (ours √(2/r_c)) into the first
  layer of every edge MLP;
- e3nn path normalisations (1/√fan-in per output) differ where our layers have more (zero-input) paths: linear
  blocks are stored as the effective matrices and divided by our own path weights;
- the species tensor-product residual becomes one linear map per species, the velocity embedding's tensor product
  (speed Gaussians ⊗ one-hot, Gaussians scaled by √M/1.12) one matrix per species, both in the species order of
  the reference's type mapper;
- `TrajCastModel`'s first layer has no linear between its tensor products and no residual: our linear is the
  identity there, the residual zero, and its missing 1/√2 is folded into the next layer's edge MLP and residual
  (or the readout);
- the readout C → C/4 → 2 vectors is folded into our two vector maps; the target scales become the RMS statistics.

The reference's target means are ignored, as its own forecast ignores them. Everything that cannot be mapped is a
one-line `UserError`.
"""

import math

import torch
import yaml
from e3nn import o3
from e3nn.math import normalize2mom
from torch import nn

from trajcast_dist.config import ModelConfig, Scales
from trajcast_dist.errors import UserError, read_user_file

__all__ = ["import_reference_model", "parse_type_map"]

_KINDS = {"_int_out.mp_layer_0.": "EfficientTrajCastModel", "layers.LinearTypeEncoding.": "TrajCastModel"}
_GATES = ("silu", "sigmoid")


def parse_type_map(text: str) -> dict[int, int]:
    """'1:0,8:1' → {1: 0, 8: 1}: atomic number → the reference's atom type (its `type_mapper`)."""
    mapping = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            z, t = (int(x) for x in item.split(":"))
        except ValueError:
            raise UserError(f"--type-map: {item!r} is not Z:TYPE (e.g. 1:0,8:1)") from None
        if not 1 <= z <= 118:
            raise UserError(f"--type-map: {z} is not an atomic number")
        if z in mapping:
            raise UserError(f"--type-map: atomic number {z} appears twice")
        mapping[z] = t
    if not mapping:
        raise UserError("--type-map is empty; give atomic number:type pairs like 1:0,8:1")
    return mapping


def import_reference_model(weights_path, architecture_path, type_map: dict[int, int], dt_fs: float,
                           periodic: bool = True):
    """The reference model in `weights_path` (a state dict) with architecture `architecture_path` as a float64
    `TrajCast`; returns (model, provenance dict)."""
    from trajcast_dist.model import TrajCast

    arch = _read_architecture(architecture_path)
    state = _read_state(weights_path)
    kind = _model_kind(state, weights_path)
    _check_types(type_map, arch)
    species = sorted(type_map)
    config, scales = _model_config(arch, state, dt_fs, periodic, architecture_path)
    config.validate(str(architecture_path))
    scales.validate(str(weights_path))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn layouts and path weights exactly as the reference built them
    try:
        model = TrajCast(config, species, scales=scales)
        with torch.no_grad():
            _Mapper(model, state, arch, kind, [type_map[z] for z in species]).fill()
    finally:
        torch.set_default_dtype(previous)
    provenance = {"reference_model": kind, "weights": str(weights_path), "architecture": str(architecture_path),
                  "type_map": {str(z): t for z, t in type_map.items()}}
    return model.eval(), provenance


def _read_architecture(path) -> dict:
    raw = read_user_file(path, "architecture file (YAML)", lambda p: yaml.safe_load(p.read_text()))
    arch = raw.get("model", raw) if isinstance(raw, dict) else None  # the reference accepts both layouts
    if not isinstance(arch, dict) or "num_hidden_channels" not in arch:
        raise UserError(f"{path}: not a reference TrajCast architecture (no num_hidden_channels); only "
                        "EfficientTrajCastModel and TrajCastModel architectures import")
    return arch


def _read_state(path) -> dict:
    state = read_user_file(path, "weights file", lambda p: torch.load(p, map_location="cpu", weights_only=True),
                           "write it with torch.save(model.state_dict())")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: expected a state dict of tensors (torch.save(model.state_dict()))")
    return {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in state.items()}


def _model_kind(state: dict, path) -> str:
    for prefix, kind in _KINDS.items():
        if any(k.startswith(prefix) for k in state):
            return kind
    raise UserError(f"{path}: not an EfficientTrajCastModel or TrajCastModel state dict (a FlexibleModel "
                    "does not import yet)")


def _check_types(type_map: dict[int, int], arch: dict) -> None:
    n = int(arch.get("num_chem_elements", 0))
    if sorted(type_map.values()) != list(range(n)):
        raise UserError(f"--type-map gives types {sorted(type_map.values())} but the model has "
                        f"num_chem_elements = {n}: map each of the types 0..{n - 1} to one atomic number")


def _model_config(arch: dict, state: dict, dt_fs: float, periodic: bool, where) -> tuple[ModelConfig, Scales]:
    if arch.get("units", "real") != "real":
        raise UserError(f"{where}: units {arch.get('units')!r}; only models in LAMMPS 'real' units (Å, fs) import")
    if arch.get("o3_backend", "e3nn") != "e3nn":
        raise UserError(f"{where}: o3_backend {arch.get('o3_backend')!r}; convert the weights to e3nn with the "
                        "reference's convert_o3_backend first")
    channels, lmax = int(arch["num_hidden_channels"]), int(arch["max_rotation_order"])
    rms = state["rms_targets"]
    scales = Scales(avg_num_neighbors=float(state["avg_num_neighbors"]), displacement_rms_A=float(rms[0]),
                    velocity_rms_A_per_fs=float(rms[1]))
    return ModelConfig(
        cutoff_A=float(state["edge_cutoff"]), num_bessel=int(arch["num_edge_rbf"]),
        cutoff_p=int(arch["num_edge_poly_cutoff"]), num_velocity_gaussians=int(arch["num_vel_rbf"]),
        velocity_max_A_per_fs=float(arch["vel_max"]), velocity_basis="interior", lmax=lmax,
        hidden_irreps="+".join(f"{channels}x{l}e+{channels}x{l}o" for l in range(lmax + 1)),
        num_layers=int(arch["num_mp_layers"]), mlp_hidden=_mlp_widths(arch, where),
        dt_fs=float(dt_fs), periodic=periodic,
        gate_activation=_gate_activation(arch, channels, lmax, where), bessel_epsilon_A=1e-5,
        conserve_ang_mom=bool(arch.get("conserve_ang_mom", False)), com_displacement="remove_if_zero_momentum",
        net_lin_mom=_target(state, "lin"), net_ang_mom=_target(state, "ang")), scales


def _mlp_widths(arch: dict, where) -> list[int]:
    widths = []
    for key in ("edge_mlp_kwargs", "vel_mlp_kwargs"):
        kwargs = arch.get(key) or {"n_neurons": [64, 64, 64]}
        if kwargs.get("activation", "silu").lower() != "silu":
            raise UserError(f"{where}: {key}.activation {kwargs['activation']!r}; only SiLU MLPs import")
        neurons = kwargs["n_neurons"]
        widths.append(list(neurons) if isinstance(neurons, list) else [int(neurons)] * int(kwargs.get("n_layers", 1)))
    if widths[0] != widths[1]:
        raise UserError(f"{where}: edge and velocity MLPs differ ({widths[0]} vs {widths[1]}); this model has one "
                        "MLP width list for both")
    return widths[0]


def _gate_activation(arch: dict, channels: int, lmax: int, where) -> str:
    gate = arch.get("nl_gate_kwargs") or {}
    scalars = gate.get("activation_scalars", {"o": "tanh", "e": "silu"})
    gates = gate.get("activation_gates", {"e": "silu"})
    if gate.get("irreps_gates", f"{2 * lmax * channels}x0e") != f"{2 * lmax * channels}x0e":
        raise UserError(f"{where}: nl_gate_kwargs.irreps_gates {gate['irreps_gates']!r}; only even-scalar gates, "
                        "one per gated irrep, import")
    if not isinstance(scalars, dict) or {k: str(v).lower() for k, v in scalars.items()} != {"o": "tanh", "e": "silu"}:
        raise UserError(f"{where}: nl_gate_kwargs.activation_scalars {scalars!r}; only {{e: silu, o: tanh}} imports")
    act = str(gates.get("e")).lower() if isinstance(gates, dict) and set(gates) == {"e"} else None
    if act not in _GATES:
        raise UserError(f"{where}: nl_gate_kwargs.activation_gates {gates!r}; only {{e: silu}} or {{e: sigmoid}} "
                        "imports")
    return act


def _target(state: dict, kind: str) -> list[float] | None:
    """The conservation layer's target total momentum (its buffer, as the reference loads it), or None."""
    values = [v for k, v in state.items() if k.endswith(f"onservation.net_{kind}_mom")]
    if not values or values[0].numel() == 0:
        return None
    if values[0].numel() != 3:
        raise UserError(f"the weights' net_{kind}_mom has {values[0].numel()} values; expected 3 (or none)")
    return values[0].tolist()


class _Mapper:
    """Fills a freshly built `TrajCast` with the reference weights (see the module docstring for the transforms)."""

    def __init__(self, model, state: dict, arch: dict, kind: str, types: list[int]):
        self.model, self.state, self.kind, self.types = model, state, kind, types
        self.encoding = "_encoding." if kind == "EfficientTrajCastModel" else "layers."
        self.body = "_int_out." if kind == "EfficientTrajCastModel" else "layers."
        self.channels, self.lmax = int(arch["num_hidden_channels"]), int(arch["max_rotation_order"])
        self.sh = o3.Irreps.spherical_harmonics(self.lmax)
        self.hidden = o3.Irreps(model.config.hidden_irreps).sort().irreps.simplify()
        self.silu_scale = normalize2mom(torch.nn.SiLU()).cst

    def weight(self, key: str) -> torch.Tensor:
        if key not in self.state:
            raise UserError(f"the weights lack {key}: not the architecture given (check num_mp_layers and the "
                            "model type)")
        return self.state[key]

    def fill(self) -> None:
        self._radial()
        self._velocity_embedding()
        irreps_in = self._embedding()
        h_scale = 1.0
        for k, layer in enumerate(self.model.layers):
            first_plain = self.kind == "TrajCastModel" and k == 0
            prefix = f"{self.body}mp_layer_{k}."
            if not torch.equal(self.weight(prefix + "avg_num_neighbors"), self.state["avg_num_neighbors"]):
                raise UserError(f"layer {k} has its own avg_num_neighbors; one value for all layers imports")
            irreps_in = self._layer(layer, prefix, irreps_in, h_scale, first_plain)
            h_scale = math.sqrt(2.0) if first_plain else 1.0
        self._readout(irreps_in, h_scale)

    def _radial(self) -> None:
        roots = self.weight(f"{self.encoding}EdgeLengthEncoding.radial_basis.bessel_roots")
        bessel = self.model.radial.bessel
        bessel.frequencies.copy_(roots / bessel.cutoff_A)

    def _velocity_embedding(self) -> None:
        """Reference: √M/1.12 exp(−(Δv/spacing)²) ⊗ one-hot (fully connected); ours: exp(−Δv²/2σ²) mixed by one
        matrix per species."""
        emb = self.model.velocity_embedding
        m, s = emb.dim, len(self.types)
        tp = o3.FullyConnectedTensorProduct(f"{m}x0e", f"{s}x0e", f"{m}x0e")
        tp.weight.copy_(self.weight(f"{self.encoding}VelocityNormEncoding.element_tp.weight"))
        for ours, ref in enumerate(self.types):
            dense = tp(torch.eye(m), _one_hot(ref, s, m))  # (M basis functions, M outputs)
            emb.weights[ours].copy_(dense.T * (math.sqrt(m) / 1.12))

    def _embedding(self) -> o3.Irreps:
        """The initial linear map; returns the irreps the reference's first layer receives."""
        s, c = len(self.types), self.channels
        rows = [*self.types, *range(s, s + self.model.velocity_embedding.dim)]  # one-hot rows in our species order
        if self.kind == "EfficientTrajCastModel":
            ref_in = o3.Irreps(f"{s + self.model.velocity_embedding.dim}x0e") + self.sh[1:]
            ref_out = (self.sh * c).sort().irreps.simplify()
            blocks = _linear_blocks(ref_in.simplify(), ref_out, self.weight(f"{self.body}LinearInit.linear.weight"))
            blocks[("0e", "0e")] = blocks[("0e", "0e")][rows]
        else:
            ref_out = o3.Irreps(f"{c}x0e")
            blocks = _linear_blocks(o3.Irreps(f"{s}x0e"), ref_out,
                                    self.weight(f"{self.body}LinearTypeEncoding.linear.weight"))
            one_hot = blocks[("0e", "0e")][self.types]
            blocks[("0e", "0e")] = torch.cat([one_hot, one_hot.new_zeros(len(rows) - s, c)])
        _set_linear(self.model.embedding, _irrep_keys(self.model.embedding.irreps_in), blocks, "initial linear")
        return ref_out

    def _layer(self, layer, prefix: str, irreps_in: o3.Irreps, h_scale: float, first_plain: bool) -> o3.Irreps:
        """One message-passing layer; returns its output irreps in the reference (ours may have more, all zero)."""
        bessel = self.model.radial.bessel
        radial_scale = (2.0 / bessel.cutoff_A) / bessel.prefactor  # the reference's Bessel prefactor over ours
        edge_paths, edge_out = _reference_paths(irreps_in, self.sh, self.lmax)
        self._mlp(layer.edge_tp, prefix + "edge_mlp", edge_paths, irreps_in, input_scale=radial_scale,
                  output_scale=h_scale)
        if first_plain:  # no linear between the tensor products: ours is the identity on the reference's blocks
            vel_in = edge_out
            identity = {(key, key[2]): torch.eye(mul) for key, (mul, _) in zip(edge_paths, edge_out)}
            _set_linear(layer.linear_message, _path_keys(layer.edge_tp.tp.tp), identity, prefix + "identity")
        else:
            vel_in = o3.Irreps([(mul, ir) for mul, ir in self.hidden if ir in [i for _, i in edge_out]])
            blocks = _linear_blocks(edge_out, vel_in, self.weight(prefix + "linear_contraction.weight"), edge_paths)
            _set_linear(layer.linear_message, _path_keys(layer.edge_tp.tp.tp), blocks, prefix + "linear_contraction")
        vel_paths, vel_out = _reference_paths(vel_in, self.sh, self.lmax)
        self._mlp(layer.velocity_tp, prefix + "vel_mlp", vel_paths, vel_in)
        layer_out = o3.Irreps([(mul, ir) for mul, ir in self.hidden if ir in [i for _, i in vel_out]])
        gates = o3.Irreps(f"{2 * self.lmax * self.channels}x0e")
        gate_in = (gates + layer_out).sort().irreps.simplify()
        if not set(gate_in) <= set(layer.gate.irreps_in):  # same roles per block: scalars first, then gates
            raise UserError(f"{prefix}: the reference gate takes {gate_in}, this model's {layer.gate.irreps_in}")
        blocks = _linear_blocks(vel_out, gate_in, self.weight(prefix + "linear_updates.weight"), vel_paths)
        _set_linear(layer.linear_update, _path_keys(layer.velocity_tp.tp.tp), blocks, prefix + "linear_updates")
        if first_plain:
            for linear in layer.residual.linears:
                linear.weight.zero_()
        else:
            self._residual(layer.residual, prefix + "tp_resnet.weight", irreps_in, layer_out, h_scale)
        return layer_out

    def _mlp(self, module, prefix: str, ref_paths: list, ref_in: o3.Irreps, input_scale: float = 1.0,
             output_scale: float = 1.0) -> None:
        """e3nn FullyConnectedNet (x @ W/√fan-in, then c·SiLU) → our plain MLP: each matrix takes 1/√fan-in and
        the factor on its input (c, or `input_scale` for the first); the last one's columns permuted by path."""
        linears = [m for m in module.mlp if isinstance(m, nn.Linear)]
        weights = [self.weight(f"{prefix}.layer{i}.weight") for i in range(len(linears))]
        if f"{prefix}.layer{len(linears)}.weight" in self.state:
            raise UserError(f"{prefix} has more layers than the architecture's MLP widths")
        scales = [input_scale / math.sqrt(w.shape[0]) if i == 0 else self.silu_scale / math.sqrt(w.shape[0])
                  for i, w in enumerate(weights)]
        for ours, ref, scale in zip(linears[:-1], weights[:-1], scales):
            ours.weight.copy_(ref.T * scale)
        path_weights = weights[-1].T * (scales[-1] * output_scale)  # (reference path weights, hidden width)
        linears[-1].weight.copy_(_permute_paths(path_weights, ref_in, ref_paths, module.tp.tp, self.sh, prefix))

    def _residual(self, residual, key: str, irreps_in: o3.Irreps, irreps_out: o3.Irreps, h_scale: float) -> None:
        """Reference: h ⊗ one-hot (fully connected) → ours: one linear map per species."""
        s = len(self.types)
        tp = o3.FullyConnectedTensorProduct(irreps_in, f"{s}x0e", irreps_out)
        tp.weight.copy_(self.weight(key))
        for ours, ref in enumerate(self.types):
            dense = tp(torch.eye(irreps_in.dim), _one_hot(ref, s, irreps_in.dim))
            blocks = {}
            for (_, ir), rows in zip(irreps_in, irreps_in.slices()):
                out = irreps_out.slices()[[i for _, i in irreps_out].index(ir)]
                blocks[(str(ir), str(ir))] = dense[rows, out][:: ir.dim, :: ir.dim]
            _set_linear(residual.linears[ours], _irrep_keys(residual.irreps_in), blocks, key, scale=h_scale)

    def _readout(self, irreps_in: o3.Irreps, h_scale: float) -> None:
        c = self.channels
        compress_out = o3.Irreps(f"{c // 4}x1o" if self.kind == "EfficientTrajCastModel" else
                                 f"{c // 4}x0e+{c // 4}x1o")
        compress = _linear_blocks(irreps_in, compress_out, self.weight(f"{self.body}LinearCompression.linear.weight"))
        target = _linear_blocks(compress_out, o3.Irreps("2x1o"), self.weight(f"{self.body}LinearReadOut.linear.weight"))
        vectors = compress[("1o", "1o")] @ target[("1o", "1o")]  # (C, 2): displacement, velocity
        readout = self.model.readout
        for column, linear in enumerate((readout.displacement, readout.velocity)):
            _set_linear(linear, ["1o"], {("1o", "1o"): vectors[:, column:column + 1]}, "readout", scale=h_scale)


def _reference_paths(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, lmax: int):
    """The reference's depthwise ("uvu") tensor product layout: every path (ir_in, ir_sh → ir_out, l ≤ l_max)
    gets an output block; blocks are sorted by irrep and the weights follow the sorted blocks. Returns the path
    keys in weight (= sorted output) order and the sorted output irreps."""
    keys, blocks = [], []
    for mul, ir_in in irreps_in:
        for _, ir_sh in irreps_sh:
            for ir_out in ir_in * ir_sh:
                if ir_out.l <= lmax:
                    keys.append((str(ir_in), str(ir_sh), str(ir_out)))
                    blocks.append((mul, ir_out))
    irreps, permutation, _ = o3.Irreps(blocks).sort()
    order = sorted(range(len(keys)), key=lambda k: permutation[k])
    return [keys[k] for k in order], irreps


def _permute_paths(rows: torch.Tensor, ref_in: o3.Irreps, ref_paths: list, tp, irreps_sh: o3.Irreps,
                   where: str) -> torch.Tensor:
    """Rows of the reference's path weights in our tensor product's order (zero for paths it lacks), corrected by
    the ratio of the two path normalisations."""
    blocks, start = {}, 0
    for ins, key in zip(_reference_tp(ref_in, irreps_sh, ref_paths).instructions, ref_paths):
        size = math.prod(ins.path_shape)
        blocks[key] = rows[start:start + size] * ins.path_weight
        start += size
    if start != rows.shape[0]:
        raise UserError(f"{where} gives {rows.shape[0]} path weights where the architecture has {start}")
    ours = []
    for ins, key in zip(tp.instructions, _path_keys(tp)):
        block = blocks.get(key)
        ours.append(rows.new_zeros(math.prod(ins.path_shape), rows.shape[1]) if block is None else
                    block / ins.path_weight)
    return torch.cat(ours)


def _reference_tp(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, keys: list):
    """An e3nn tensor product with the reference's instructions, for its path weights (no weights of its own)."""
    mul_in = {str(ir): mul for mul, ir in irreps_in}
    out = o3.Irreps([(mul_in[key[0]], o3.Irrep(key[2])) for key in keys])
    index_in = {str(ir): i for i, (_, ir) in enumerate(irreps_in)}
    index_sh = {str(ir): i for i, (_, ir) in enumerate(irreps_sh)}
    instructions = [(index_in[a], index_sh[b], k, "uvu", True) for k, (a, b, _) in enumerate(keys)]
    return o3.TensorProduct(irreps_in, irreps_sh, out, instructions, shared_weights=False, internal_weights=False,
                            compile_left_right=False, compile_right=False)


def _path_keys(tp) -> list:
    """(ir_in, ir_sh, ir_out) of each instruction (= output block) of one of our channel-wise tensor products."""
    return [(str(tp.irreps_in1[i.i_in1].ir), str(tp.irreps_in2[i.i_in2].ir), str(tp.irreps_out[i.i_out].ir))
            for i in tp.instructions]


def _irrep_keys(irreps: o3.Irreps) -> list:
    return [str(ir) for _, ir in irreps]


def _linear_blocks(irreps_in: o3.Irreps, irreps_out: o3.Irreps, flat: torch.Tensor, in_keys: list | None = None):
    """{(input key, output irrep): effective (mul_in × mul_out) matrix, path weight included} of an e3nn Linear."""
    linear = o3.Linear(irreps_in, irreps_out)
    if flat.numel() != linear.weight_numel:
        raise UserError(f"a reference linear map has {flat.numel()} weights where {irreps_in} → {irreps_out} needs "
                        f"{linear.weight_numel}: the architecture file does not match the weights")
    in_keys = in_keys or _irrep_keys(irreps_in)
    return {(in_keys[ins.i_in], str(irreps_out[ins.i_out].ir)):
            ins.path_weight * linear.weight_view_for_instruction(i, flat) for i, ins in enumerate(linear.instructions)}


def _set_linear(linear, in_keys: list, blocks: dict, where: str, scale: float = 1.0) -> None:
    """Our e3nn Linear from effective blocks (divided by our path weights); blocks the reference lacks are 0."""
    weight = torch.zeros_like(linear.weight)
    used = set()
    for i, ins in enumerate(linear.instructions):
        key = (in_keys[ins.i_in], str(linear.irreps_out[ins.i_out].ir))
        if key in blocks:
            linear.weight_view_for_instruction(i, weight).copy_(blocks[key] * (scale / ins.path_weight))
            used.add(key)
    lost = [k for k, b in blocks.items() if k not in used and bool(b.abs().max() > 0)]
    if lost:
        raise UserError(f"{where}: reference weights {lost[0]} have no counterpart in this model's layer")
    linear.weight.copy_(weight)


def _one_hot(index: int, size: int, rows: int) -> torch.Tensor:
    return nn.functional.one_hot(torch.tensor(index), size).to(torch.float64).expand(rows, size)
