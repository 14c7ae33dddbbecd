"""`trajcast-dist evaluate MODEL STORE.zarr --split test`: errors of a model on a pair store, laid out like
SI Table S1 (absolute and relative MAE of displacement and velocity, for the system and per element)."""

import json
from pathlib import Path

import torch

from trajcast_dist.errors import UserError

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("model", help="model file (.pt) from training (OUT/model.pt) or `trajcast-dist model`")
    parser.add_argument("store", help="pair store (.zarr) from `trajcast-dist data pairs`")
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument("--max-frames", type=int, help="evaluate only the first N frames of the split")
    parser.add_argument("--batch-size", type=int, default=2, help="frames per forward pass (default 2)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--system", help="name in the table's System column (default: the store's name)")
    parser.add_argument("--json", help="also write the metrics to this JSON file")
    parser.add_argument("--exact", action="store_true",
                        help="the exact e3nn path (default: the fast inference path, ≤ 1e-9 relative to it in "
                             "float64, as `forecast` runs)")


def run(args) -> int:
    from trajcast_dist.data.store import PairStore
    from trajcast_dist.io.checkpoint import load_model
    from trajcast_dist.reduce import LocalReducer
    from trajcast_dist.training.evaluate import evaluate, table_s1

    if args.batch_size <= 0 or (args.max_frames is not None and args.max_frames <= 0):
        raise UserError("--batch-size and --max-frames must be > 0")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, meta = load_model(args.model, dtype=getattr(torch, args.dtype))
    if not args.exact:
        model.use_fast_inference()
    store = PairStore(args.store)
    store.check_split(args.split)
    store.check_dt(model.dt_fs)
    rms = (model.scales.displacement_rms_A, model.scales.velocity_rms_A_per_fs)
    summary = evaluate(model, store, args.split, LocalReducer(), args.batch_size, rms,
                       max_frames=args.max_frames).summary()
    n = min(store.n_frames(args.split), args.max_frames or store.n_frames(args.split))
    print(f"# {args.model} on {args.store} split {args.split!r}, {'exact' if args.exact else 'fast'} path"
          f"{'' if meta.get('trained') else '  (UNTRAINED model: no training metadata)'}")
    print(table_s1(summary, args.system or Path(args.store).stem, model.dt_fs, model.species, n))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0
