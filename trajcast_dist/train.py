"""`python -m trajcast_dist.train --config configs/water.yaml [flags]` (also `trajcast-dist train`) — one process,
or one rank of many:

    torchrun --nproc_per_node N [--nnodes M --rdzv-endpoint HOST:PORT] -m trajcast_dist.train --config ...

The same code either way: ranks come from torchrun's RANK/WORLD_SIZE, gloo on CPU and NCCL on GPU unless
--dist-backend says otherwise. Settings live in the YAML config; the flags below override a few of them.
The loop itself is `trajcast_dist.training.train` (callable from Python and tests).
"""

import argparse
import sys

from trajcast_dist.errors import UserError

__all__ = ["main", "add_arguments", "run", "apply_overrides"]

# flag → training.<field>
_OVERRIDES = {"data": "data", "out": "out_dir", "epochs": "max_epochs", "dtype": "dtype", "engine": "engine",
              "dist_backend": "dist_backend", "deepspeed_config": "deepspeed_config", "max_steps": "max_steps",
              "device": "device", "threads": "threads", "seed": "seed", "batch_size": "batch_size", "lr": "lr",
              "init_from": "init_from", "path": "path"}


def add_arguments(p) -> None:
    p.add_argument("--config", help="YAML config with model: and training: sections (e.g. configs/water.yaml)")
    p.add_argument("--data", help="training pair store (.zarr) [training.data]")
    p.add_argument("--out", help="output directory: checkpoints/, model.pt, train_log.csv [training.out_dir]")
    p.add_argument("--epochs", type=int, help="maximum number of epochs [training.max_epochs]")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps [training.max_steps]")
    p.add_argument("--batch-size", type=int, help="global batch = per-rank batch × ranks [training.batch_size]")
    p.add_argument("--seed", type=int, help="seed of weights and sampler [training.seed]")
    p.add_argument("--lr", type=float, help="initial learning rate [training.lr]")
    p.add_argument("--init-from", metavar="MODEL",
                   help="start from this model file's weights (fine-tuning; same architecture and species), "
                        "with a fresh optimiser and scheduler [training.init_from]")
    p.add_argument("--dtype", choices=["float64", "float32"], help="[training.dtype]")
    p.add_argument("--engine", choices=["ddp", "deepspeed"], help="[training.engine]")
    p.add_argument("--deepspeed-config", help="DeepSpeed JSON, e.g. configs/deepspeed_zero1.json")
    p.add_argument("--dist-backend", choices=["auto", "gloo", "nccl"],
                   help="torch.distributed backend [training.dist_backend]")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="[training.device]")
    p.add_argument("--threads", type=int, help="torch CPU threads per rank [cores / ranks on the node]")
    p.add_argument("--resume", nargs="?", const="auto", metavar="CHECKPOINT",
                   help="continue OUT/checkpoints/last.pt (or the given checkpoint) exactly where it stopped")
    p.add_argument("--check", action="store_true",
                   help="check config, data and batch for --nproc ranks, then exit (run before launching)")
    p.add_argument("--nproc", type=int, default=None, help="with --check: the total number of ranks to expect")
    p.add_argument("--export", metavar="CHECKPOINT",
                   help="write CHECKPOINT's model as a forecast model file to --out (a .pt path), then exit")
    p.add_argument("--exact", dest="path", action="store_const", const="exact",
                   help="train on the exact e3nn tensor products (the reference) instead of the fast path "
                        "[training.path]")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)  # `deepspeed` launcher


def apply_overrides(config, args):
    """Config with the given flags written over its training section, validated again."""
    for flag, field in _OVERRIDES.items():
        value = getattr(args, flag, None)
        if value is not None:
            setattr(config.training, field, value)
    config.training.validate("command line")
    return config


def main(argv=None) -> int:
    from trajcast_dist.errors import run_guarded

    parser = argparse.ArgumentParser(prog="python -m trajcast_dist.train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_guarded(run, parser.parse_args(argv), prog="trajcast_dist.train")


def run(args) -> int:
    from trajcast_dist.config import load_config

    if args.export:
        from trajcast_dist.training.checkpoint import export_checkpoint

        if not args.out:
            raise UserError("--export needs --out MODEL.pt")
        print(f"wrote {export_checkpoint(args.export, args.out)}")
        return 0
    if not args.config:
        raise UserError("--config is required (e.g. --config configs/water.yaml)")
    config = apply_overrides(load_config(args.config), args)
    if args.check:
        from trajcast_dist.training import prepare
        from trajcast_dist.launch import launch_env

        nproc = args.nproc or launch_env().world_size
        prepared = prepare(config, nproc, args.resume)
        print(f"ok: {config.training.data} ({prepared.store.n_frames('train')} training frames, species "
              f"{prepared.species}), global batch {config.training.batch_size} over {nproc} rank(s)")
        return 0
    from trajcast_dist.training import train

    train(config, resume=args.resume, progress=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
