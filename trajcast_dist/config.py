"""Typed configs read from YAML (configs/*.yaml), validated with errors that name the key and the file.

A config file has sections `model:` and optionally `training:`; unknown or mistyped keys are errors. The configs
ship inside the package (trajcast_dist/configs/, package data; the repository's configs/ links there), so a name
such as `tiny` or `water.yaml` finds them from any directory of any install; a path that exists wins.
"""

import dataclasses
import importlib.resources
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trajcast_dist.errors import UserError, read_user_file

__all__ = ["ModelConfig", "Scales", "TrainConfig", "Config", "load_config", "resolve_config", "shipped_configs",
           "from_mapping", "stored_model"]

_FINITE = " and finite (YAML .nan and .inf are refused)"
# torch.distributed's backend had the name of the model's tensor-product backend, which is a run-time choice
_RENAMED = {("training", "backend"): "training.dist_backend", ("model", "backend"): "training.tensor_backend"}


@dataclass
class ModelConfig:
    """Hyper-parameters of the TrajCast network (paper Methods, "Model Size and Hyperparameters")."""

    cutoff_A: float = 6.0
    num_bessel: int = 8
    bessel_trainable: bool = True
    cutoff_p: int = 6
    num_velocity_gaussians: int = 8
    velocity_max_factor: float = 4.0  # v_max = factor × Maxwell–Boltzmann v_RMS of the lightest element (Scales)
    lmax: int = 2
    hidden_irreps: str = "64x0e+64x0o+64x1e+64x1o+64x2e+64x2o"
    num_layers: int = 4
    mlp_hidden: list[int] = field(default_factory=lambda: [64, 64, 64])
    dt_fs: float = 5.0
    periodic: bool = True
    # Outputs relative to a physical baseline (issue #13): "none" predicts Δr and v′ (the paper); "ballistic"
    # predicts Δr − v Δt and v′ − v, the parts that free flight does not already give.
    baseline: str = "none"
    # Scale each species' outputs (and its loss terms) by that species' target RMS instead of one global RMS.
    per_species_scale: bool = False
    # Options that let models trained with the reference implementation (IBM/trajcast) run here exactly;
    # the defaults are this project's own choices, so existing model files keep their numbers.
    gate_activation: str = "sigmoid"  # activation of the gates of l > 0 features: sigmoid or silu (reference)
    bessel_epsilon_A: float = 0.0  # Bessel basis divides by (r + ε); the reference uses 1e-5
    velocity_basis: str = "endpoints"  # speed Gaussians: "endpoints" (centres on [0, v_max], σ = spacing) or
    # "interior" (the reference's e3nn soft_one_hot_linspace layout: centres inside (0, v_max), σ = spacing/√2)
    velocity_max_A_per_fs: float | None = None  # explicit v_max; null: velocity_max_factor × v_RMS rule
    conserve_ang_mom: bool | None = None  # restore the angular momentum; null: only for isolated molecules
    com_displacement: str = "remove"  # "remove" always, or "remove_if_zero_momentum" (reference rule)
    net_lin_mom: list[float] | None = None  # target total momentum (amu·Å/fs); null: the input's
    net_ang_mom: list[float] | None = None  # target total angular momentum (amu·Å²/fs); null: the input's

    def validate(self, where: str) -> None:
        _check_positive(self, "model", where, ("cutoff_A", "num_bessel", "cutoff_p", "num_velocity_gaussians",
                                               "velocity_max_factor", "num_layers", "dt_fs"))
        if self.lmax < 1:
            raise UserError(f"{where}: model.lmax = {self.lmax} must be ≥ 1 (the readout needs l=1 vectors)")
        _check_choices(self, "model", where, {"baseline": ("none", "ballistic"), "gate_activation": ("sigmoid", "silu"),
                                              "velocity_basis": ("endpoints", "interior"),
                                              "com_displacement": ("remove", "remove_if_zero_momentum")})
        if not self.mlp_hidden or any(w <= 0 for w in self.mlp_hidden):
            raise UserError(f"{where}: model.mlp_hidden = {self.mlp_hidden} must be a list of positive widths")
        try:
            from e3nn import o3
            irreps = o3.Irreps(self.hidden_irreps)
        except Exception:
            raise UserError(f"{where}: model.hidden_irreps = {self.hidden_irreps!r} is not an e3nn irreps string "
                            "(e.g. 64x0e+64x1o)") from None
        if o3.Irrep("1o") not in [ir for _, ir in irreps]:
            raise UserError(f"{where}: model.hidden_irreps must contain 1o vectors for the readout")
        self._validate_reference_options(where)

    def _validate_reference_options(self, where: str) -> None:
        if self.bessel_epsilon_A < 0:
            raise UserError(f"{where}: model.bessel_epsilon_A = {self.bessel_epsilon_A} must be ≥ 0")
        if self.velocity_max_A_per_fs is not None and self.velocity_max_A_per_fs <= 0:
            raise UserError(f"{where}: model.velocity_max_A_per_fs = {self.velocity_max_A_per_fs} must be > 0 "
                            "(or null)")
        for name in ("net_lin_mom", "net_ang_mom"):
            value = getattr(self, name)
            if value is not None and len(value) != 3:
                raise UserError(f"{where}: model.{name} = {value} must be three numbers (x, y, z) or null")


@dataclass
class Scales:
    """What the network normalises by, measured on its training data (paper Methods: average neighbour count,
    target RMS, v_RMS of the velocity embedding). `train` sets them and model files store them apart from the
    architecture; the defaults (or a config's `scales:` section) serve an untrained model."""

    avg_num_neighbors: float = 90.0
    displacement_rms_A: float = 0.05
    velocity_rms_A_per_fs: float = 0.01
    temperature_K: float = 300.0  # the v_RMS behind v_max (ModelConfig.velocity_max_factor)
    # per species, for ModelConfig.per_species_scale
    species_displacement_rms_A: list[float] | None = None
    species_velocity_rms_A_per_fs: list[float] | None = None

    def validate(self, where: str) -> None:
        _check_positive(self, "scales", where, ("avg_num_neighbors", "displacement_rms_A", "velocity_rms_A_per_fs",
                                                "temperature_K"))
        for name in ("species_displacement_rms_A", "species_velocity_rms_A_per_fs"):
            values = getattr(self, name)
            if values is not None and not all(math.isfinite(v) and v > 0 for v in values):
                raise UserError(f"{where}: scales.{name} = {values} must be positive numbers, one per species")


_SCALE_KEYS = tuple(f.name for f in dataclasses.fields(Scales))
_RENAMED.update({("model", key): f"scales.{key}" for key in _SCALE_KEYS})


@dataclass
class TrainConfig:
    """Training recipe (paper Methods, "Training"): Adam+AMSGrad, plateau scheduler, early stopping."""

    data: str = ""
    out_dir: str = "runs/train"
    batch_size: int = 2  # global batch (per-rank batch × world size)
    lr: float = 0.01
    amsgrad: bool = True
    scheduler_factor: float = 0.8
    scheduler_patience: int = 20
    early_stopping_patience: int = 100
    max_epochs: int = 1500
    loss_weight_displacement: float = 0.5
    loss_weight_velocity: float = 0.5
    dtype: str = "float64"
    seed: int = 0
    ema_decay: float | None = None
    engine: str = "ddp"
    deepspeed_config: str | None = None
    max_train_frames: int | None = None
    max_val_frames: int | None = None
    log_every: int = 10
    max_steps: int | None = None  # stop after this many optimiser steps in total (tests, benchmarks)
    checkpoint_every: int = 0  # also write `last` every N steps (0: at the end of each epoch only)
    species: list[int] | None = None  # atomic numbers the model knows; default: the store's species
    dist_backend: str = "auto"  # torch.distributed backend: auto (nccl on GPU, gloo on CPU), gloo, nccl
    tensor_backend: str = "e3nn"  # the model's tensor products: e3nn (reference), cueq, auto (cueq on GPU)
    device: str = "auto"  # auto (cuda:LOCAL_RANK when a GPU is visible), cpu, cuda
    threads: int | None = None  # torch CPU threads per rank; default cores / ranks on the node
    init_from: str | None = None  # model file whose weights start a new run (fine-tuning); fresh optimiser
    path: str = "fast"  # tensor products: fast (grouped, fused CPU kernel with autograd) or exact (e3nn reference)
    time_reversal: float = 0.0  # probability of training on a pair reversed in time (issue #13)
    noise_displacement_A: float = 0.0  # σ of Gaussian noise on input positions; the target stays the true state
    noise_velocity_A_per_fs: float = 0.0  # σ of Gaussian noise on input velocities
    # σ of the position noise per element symbol ({H: 0.003}), replacing noise_displacement_A for those elements:
    # stretched O–H bonds in the input teach the pull back without the drift a large σ gives the molecules' motion
    noise_displacement_by_element: dict[str, float] | None = None
    pushforward: float = 0.0  # probability that a pair's input is the model's own forecast from the frames before
    pushforward_steps: int = 1  # steps of that forecast (unrolled without gradient)

    def validate(self, where: str) -> None:
        if self.batch_size <= 0:
            raise UserError(f"{where}: training.batch_size = {self.batch_size} must be > 0")
        for name in ("lr", "scheduler_factor", "max_epochs", "log_every"):
            if not 0 < getattr(self, name) < math.inf:
                raise UserError(f"{where}: training.{name} = {getattr(self, name)} must be > 0{_FINITE}")
        for name in ("scheduler_patience", "early_stopping_patience", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise UserError(f"{where}: training.{name} = {getattr(self, name)} must be ≥ 0")
        for name in ("max_steps", "max_train_frames", "max_val_frames", "threads"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise UserError(f"{where}: training.{name} = {getattr(self, name)} must be > 0 (or null)")
        if self.pushforward_steps < 1:
            raise UserError(f"{where}: training.pushforward_steps = {self.pushforward_steps} must be ≥ 1")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise UserError(f"{where}: training.ema_decay = {self.ema_decay} must be in (0, 1), e.g. 0.99")
        _check_choices(self, "training", where, {
            "dist_backend": ("auto", "gloo", "nccl"), "tensor_backend": ("e3nn", "cueq", "auto"),
            "device": ("auto", "cpu", "cuda"), "dtype": ("float64", "float32"), "path": ("fast", "exact"),
            "engine": ("ddp", "deepspeed")})
        for name in ("time_reversal", "pushforward"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"{where}: training.{name} = {getattr(self, name)} must be a probability in [0, 1]")
        for name in ("noise_displacement_A", "noise_velocity_A_per_fs"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise UserError(f"{where}: training.{name} = {getattr(self, name)} must be ≥ 0")
        from ase.data import atomic_numbers

        for element, sigma in (self.noise_displacement_by_element or {}).items():
            if element not in atomic_numbers or not 0 <= sigma < math.inf:
                raise UserError(f"{where}: training.noise_displacement_by_element has {element}: {sigma}; use element "
                                "symbols and σ ≥ 0 in Å, e.g. {H: 0.003}")
        if self.engine == "deepspeed" and not self.deepspeed_config:
            raise UserError(f"{where}: training.engine = deepspeed needs training.deepspeed_config "
                            "(e.g. configs/deepspeed_zero1.json)")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    scales: Scales = field(default_factory=Scales)
    training: TrainConfig = field(default_factory=TrainConfig)


def shipped_configs() -> dict[str, Path]:
    """Configs in the package by name (`tiny`, `water`, ...)."""
    folder = importlib.resources.files("trajcast_dist") / "configs"
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def resolve_config(spec) -> Path:
    """An existing file as given, else the shipped config of that name (`tiny`, `tiny.yaml`)."""
    path = Path(spec)
    if path.is_file():
        return path
    shipped = shipped_configs()
    if path.suffix in ("", ".yaml") and str(path.parent) == "." and path.stem in shipped:
        return shipped[path.stem]
    raise UserError(f"config file {path} not found; give a YAML path or a shipped name "
                    f"({', '.join(sorted(shipped))})")


def load_config(path) -> Config:
    """Read and validate a YAML config (a path or a shipped name, `resolve_config`); every problem is a UserError
    naming the file and key."""
    path = resolve_config(path)
    raw = read_user_file(path, "config file (YAML)", lambda p: yaml.safe_load(p.read_text()) or {})
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with sections 'model', 'scales' and 'training'")
    unknown = set(raw) - {"model", "scales", "training"}
    if unknown:
        raise UserError(f"{path}: unknown section {sorted(unknown)[0]!r}; allowed: model, scales, training")
    config = Config(*(from_mapping(cls, raw.get(name) or {}, f"{path}", name) for cls, name in
                      ((ModelConfig, "model"), (Scales, "scales"), (TrainConfig, "training"))))
    for part in (config.model, config.scales, config.training):
        part.validate(str(path))
    return config


def stored_model(model: dict, scales: dict | None, where: str) -> tuple[ModelConfig, Scales]:
    """The architecture and scales a model file or checkpoint stores. Files written before the two were apart keep
    the scales (and the run-time backend) among the model's keys."""
    scales = {**{k: v for k, v in model.items() if k in _SCALE_KEYS}, **(scales or {})}
    model = {k: v for k, v in model.items() if k not in _SCALE_KEYS and k != "backend"}
    return from_mapping(ModelConfig, model, where, "model"), from_mapping(Scales, scales, where, "scales")


def from_mapping(cls, mapping: dict, where: str, section: str):
    """Build dataclass `cls` from a mapping, rejecting unknown keys and values of the wrong type."""
    if not isinstance(mapping, dict):
        raise UserError(f"{where}: section {section!r} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in mapping.items():
        if (section, key) in _RENAMED:
            raise UserError(f"{where}: {section}.{key} is now {_RENAMED[section, key]}")
        if key not in fields:
            close = [name for name in fields if name.split("_")[0] == str(key).split("_")[0]]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"{where}: unknown key {section}.{key}{hint}")
        if not _matches(value, hints[key]):
            raise UserError(f"{where}: {section}.{key} = {value!r} should be of type {_type_name(hints[key])}")
    values = {k: (float(v) if hints[k] is float and isinstance(v, int) else v) for k, v in mapping.items()}
    return cls(**values)


def _check_positive(config, section: str, where: str, names: tuple[str, ...]) -> None:
    for name in names:
        if not 0 < getattr(config, name) < math.inf:
            raise UserError(f"{where}: {section}.{name} = {getattr(config, name)} must be > 0{_FINITE}")


def _check_choices(config, section: str, where: str, choices: dict[str, tuple[str, ...]]) -> None:
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            listed = f"{', '.join(allowed[:-1])} or {allowed[-1]}"
            raise UserError(f"{where}: {section}.{name} = {getattr(config, name)!r}; choose {listed}")


def _matches(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (inner,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, inner) for v in value)
    if origin is dict:
        key, inner = typing.get_args(hint)
        return isinstance(value, dict) and all(_matches(k, key) and _matches(v, inner) for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint) -> str:
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))
