"""Two ways to run the same optimiser step: plain PyTorch (one process or DDP) and a DeepSpeed engine.

Both expose `module` (the bare TrajCast), `optimizer` (the torch Adam the scheduler adjusts), `__call__`,
`backward`, `step`, and `save` / `load` of what they own; the loop never asks which one it has.
Gradients are averaged over ranks by both (DDP, DeepSpeed), so the loop scales each rank's loss by W.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from trajcast_dist.errors import UserError, read_user_file

__all__ = ["make_engine", "PlainEngine", "DeepSpeedEngine", "check_deepspeed_config"]


def make_engine(name: str, model, optimizer, dist, global_batch: int, deepspeed_config: str | None):
    if name == "deepspeed":
        return DeepSpeedEngine(model, optimizer, dist, global_batch, deepspeed_config)
    return PlainEngine(model, optimizer, dist)


class PlainEngine:
    """One process, or DistributedDataParallel over the process group."""

    name = "ddp"

    def __init__(self, model, optimizer, dist):
        self.module, self.optimizer = model, optimizer
        self.wrapped = model
        if dist.active:
            from torch.nn.parallel import DistributedDataParallel

            # Inputs are built on the right device already, so no device_ids (works for CPU and GPU).
            self.wrapped = DistributedDataParallel(model)

    def __call__(self, graph):
        return self.wrapped(graph)

    def backward(self, loss) -> None:
        loss.backward()

    def step(self) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict, checkpoint_dir: Path, tag: str | None) -> None:
        self.optimizer.load_state_dict(state["optimizer"])

    def save_shards(self, checkpoint_dir: Path, tag: str) -> None:
        """Nothing beyond the rank-0 file: model and optimiser are identical on every rank."""

    def prune_shards(self, checkpoint_dir: Path, keep: set[str]) -> None:
        pass


class DeepSpeedEngine:
    """`deepspeed.initialize` around the same model and Adam (ZeRO-1/2 partition the optimiser state).

    Checkpoints: every rank writes its optimiser partition with `save_checkpoint` under a tag named for the
    step; rank 0's training-state file (written last, atomically) names the tag, so a kill mid-save leaves
    the previous tag and file in force. ZeRO-1/2 keep full weights on every rank, so the rank-0 file also
    holds the plain model state and exports like a DDP checkpoint.
    """

    name = "deepspeed"

    def __init__(self, model, optimizer, dist, global_batch: int, config_path: str | None):
        os.environ.setdefault("DS_ACCELERATOR", "cuda" if dist.device.type == "cuda" else "cpu")
        deepspeed = _import_deepspeed()
        config = check_deepspeed_config(config_path)
        config.update(train_batch_size=global_batch, train_micro_batch_size_per_gpu=global_batch // dist.world_size,
                      gradient_accumulation_steps=1)
        config.setdefault("zero_allow_untested_optimizer", True)  # Adam+AMSGrad is a plain torch optimiser
        if dist.device.type == "cpu":
            _skip_shm_op(deepspeed)
        if not torch.distributed.is_initialized():  # one process without torchrun: a group of one
            for key, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"),
                               ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", str(_free_port()))):
                os.environ.setdefault(key, value)
            deepspeed.init_distributed(dist_backend=dist.backend, auto_mpi_discovery=False)
            dist.initialised = True
        self.module, self.optimizer = model, optimizer
        self.engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)

    def __call__(self, graph):
        return self.engine(graph)

    def backward(self, loss) -> None:
        self.engine.backward(loss)

    def step(self) -> None:
        self.engine.step()

    def state_dict(self) -> dict:
        return {}

    def save_shards(self, checkpoint_dir: Path, tag: str) -> None:
        """Collective: every rank writes its part under checkpoint_dir/deepspeed/TAG."""
        self.engine.save_checkpoint(str(checkpoint_dir / "deepspeed"), tag=tag, save_latest=False)

    def load_state_dict(self, state: dict, checkpoint_dir: Path, tag: str | None) -> None:
        if tag is None:
            raise UserError(f"{checkpoint_dir}: checkpoint was not written by the deepspeed engine; "
                            "resume with --engine ddp")
        path, _ = self.engine.load_checkpoint(str(checkpoint_dir / "deepspeed"), tag=tag,
                                              load_lr_scheduler_states=False)
        if path is None:
            raise UserError(f"{checkpoint_dir / 'deepspeed' / tag}: DeepSpeed checkpoint missing or unreadable")

    def prune_shards(self, checkpoint_dir: Path, keep: set[str]) -> None:
        root = checkpoint_dir / "deepspeed"
        for tag_dir in root.glob("step*"):
            if tag_dir.name not in keep:
                shutil.rmtree(tag_dir, ignore_errors=True)


def check_deepspeed_config(path) -> dict:
    """Read a DeepSpeed JSON config; only ZeRO stages 0–2 (stage 3 shards the weights, which the loop,
    EMA and export assume are whole on every rank)."""
    if not path:
        raise UserError("--engine deepspeed needs training.deepspeed_config (e.g. configs/deepspeed_zero1.json)")
    path = Path(path)
    config = read_user_file(path, "deepspeed config", lambda p: json.loads(p.read_text()))
    stage = config.get("zero_optimization", {}).get("stage", 0)
    if stage not in (0, 1, 2):
        raise UserError(f"{path}: zero_optimization.stage = {stage}; trajcast-dist supports ZeRO stages 0, 1, 2")
    for key in ("fp16", "bf16"):
        if config.get(key, {}).get("enabled"):
            raise UserError(f"{path}: {key} is enabled; TrajCast trains in float64/float32 (training.dtype)")
    return config


def _skip_shm_op(deepspeed) -> None:
    """DeepSpeed's CPU backend compiles a shared-memory allreduce op (~2.5 min on 2 cores) that only its
    inference path uses (`inference_all_reduce`); training allreduces go through torch.distributed (gloo)."""
    from deepspeed.accelerator import get_accelerator

    builder = get_accelerator().create_op_builder("ShareMemCommBuilder")
    if builder is not None:
        deepspeed.ops.__compatible_ops__[builder.NAME] = False


def _import_deepspeed():
    try:
        import deepspeed
    except ImportError:
        raise UserError("--engine deepspeed: DeepSpeed is not installed; pip install 'trajcast-dist[deepspeed]' "
                        "or use --engine ddp") from None
    return deepspeed


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
