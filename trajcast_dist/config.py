"""Typed configs read from YAML (configs/*.yaml), validated with errors that name the key and the file.

A config file has sections `model:` and optionally `training:`; unknown or mistyped keys are errors.
"""

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trajcast_dist.errors import UserError

__all__ = ["ModelConfig", "TrainConfig", "Config", "load_config", "from_mapping"]

_FINITE = " and finite (YAML .nan and .inf are refused)"


@dataclass
class ModelConfig:
    """Hyper-parameters of the TrajCast network (paper Methods, "Model Size and Hyperparameters")."""

    cutoff_A: float = 6.0
    num_bessel: int = 8
    bessel_trainable: bool = True
    cutoff_p: int = 6
    num_velocity_gaussians: int = 8
    velocity_max_factor: float = 4.0  # v_max = factor × Maxwell–Boltzmann v_RMS of the lightest element
    temperature_K: float = 300.0  # temperature used for that v_RMS when no dataset statistics are given
    lmax: int = 2
    hidden_irreps: str = "64x0e+64x0o+64x1e+64x1o+64x2e+64x2o"
    num_layers: int = 4
    mlp_hidden: list[int] = field(default_factory=lambda: [64, 64, 64])
    avg_num_neighbors: float = 90.0  # replaced by the dataset statistic when training
    displacement_rms_A: float = 0.05  # replaced by the dataset statistic when training
    velocity_rms_A_per_fs: float = 0.01  # replaced by the dataset statistic when training
    dt_fs: float = 5.0
    periodic: bool = True
    backend: str = "e3nn"

    def validate(self, where: str) -> None:
        positive = ("cutoff_A", "num_bessel", "cutoff_p", "num_velocity_gaussians", "velocity_max_factor",
                    "temperature_K", "num_layers", "avg_num_neighbors", "displacement_rms_A",
                    "velocity_rms_A_per_fs", "dt_fs")
        for name in positive:
            if not 0 < getattr(self, name) < math.inf:
                raise UserError(f"{where}: model.{name} = {getattr(self, name)} must be > 0{_FINITE}")
        if self.lmax < 1:
            raise UserError(f"{where}: model.lmax = {self.lmax} must be ≥ 1 (the readout needs l=1 vectors)")
        if self.backend not in ("e3nn", "cueq", "auto"):
            raise UserError(f"{where}: model.backend = {self.backend!r}; choose e3nn, cueq or auto")
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
    backend: str = "auto"  # torch.distributed backend: auto (nccl on GPU, gloo on CPU), gloo, nccl
    device: str = "auto"  # auto (cuda:LOCAL_RANK when a GPU is visible), cpu, cuda
    threads: int | None = None  # torch CPU threads per rank; default cores / ranks on the node
    init_from: str | None = None  # model file whose weights start a new run (fine-tuning); fresh optimiser

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
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise UserError(f"{where}: training.ema_decay = {self.ema_decay} must be in (0, 1), e.g. 0.99")
        if self.backend not in ("auto", "gloo", "nccl"):
            raise UserError(f"{where}: training.backend = {self.backend!r}; choose auto, gloo or nccl")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UserError(f"{where}: training.device = {self.device!r}; choose auto, cpu or cuda")
        if self.dtype not in ("float64", "float32"):
            raise UserError(f"{where}: training.dtype = {self.dtype!r}; choose float64 or float32")
        if self.engine not in ("ddp", "deepspeed"):
            raise UserError(f"{where}: training.engine = {self.engine!r}; choose ddp or deepspeed")
        if self.engine == "deepspeed" and not self.deepspeed_config:
            raise UserError(f"{where}: training.engine = deepspeed needs training.deepspeed_config "
                            "(e.g. configs/deepspeed_zero1.json)")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainConfig = field(default_factory=TrainConfig)


def load_config(path) -> Config:
    """Read and validate a YAML config; every problem is a UserError naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with sections 'model' and 'training'")
    unknown = set(raw) - {"model", "training"}
    if unknown:
        raise UserError(f"{path}: unknown section {sorted(unknown)[0]!r}; allowed: model, training")
    config = Config(model=from_mapping(ModelConfig, raw.get("model") or {}, f"{path}", "model"),
                    training=from_mapping(TrainConfig, raw.get("training") or {}, f"{path}", "training"))
    config.model.validate(str(path))
    config.training.validate(str(path))
    return config


def from_mapping(cls, mapping: dict, where: str, section: str):
    """Build dataclass `cls` from a mapping, rejecting unknown keys and values of the wrong type."""
    if not isinstance(mapping, dict):
        raise UserError(f"{where}: section {section!r} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in mapping.items():
        if key not in fields:
            close = [name for name in fields if name.split("_")[0] == str(key).split("_")[0]]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"{where}: unknown key {section}.{key}{hint}")
        if not _matches(value, hints[key]):
            raise UserError(f"{where}: {section}.{key} = {value!r} should be of type {_type_name(hints[key])}")
    values = {k: (float(v) if hints[k] is float and isinstance(v, int) else v) for k, v in mapping.items()}
    return cls(**values)


def _matches(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (inner,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, inner) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint) -> str:
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))
