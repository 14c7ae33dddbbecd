"""Average several model files into one forecast (issue #13 ablation: does a lower one-step error from an ensemble
change the H / O balance and the diffusion of the water model under CSVR?).

    python benchmarks/ensemble_forecast.py mae --members trajcast_dist/pretrained/water_dt5.pt \
        candidates/water_wide_eq_csvr.pt --store runs/eq/water_hot550_eq40.zarr --max-frames 200
    python benchmarks/ensemble_forecast.py forecast --members trajcast_dist/pretrained/water_dt5.pt \
        candidates/water_wide_eq_csvr.pt --gain H=0.9965,O=1.0019 -- start.xyz --steps 20000 --seed 11 \
        --temperature 300 --tau 50 --thermostat csvr --stride 1 --fast --dtype float32 --output f.xyz

`mae` prints the test-split errors of each member and of their average. `forecast` runs `trajcast-dist-forecast`
(every argument after `--`, without --model) with the first member's forward replaced by the mean of all members'
outputs on the same graph: the first member gives the run-time settings (position noise, thermostat, header),
`--gain` sets one velocity gain on every member. Each member conserves momentum, so the mean does.
"""

import argparse
import sys

import torch

from trajcast_dist.cli.elements import parse_element_values
from trajcast_dist.io import checkpoint


def averaged(members):
    """The first member, its forward the mean of every member's (displacement, velocity)."""
    first, forward = members[0], members[0].forward
    if any((m.species, m.cutoff_A, m.dt_fs) != (first.species, first.cutoff_A, first.dt_fs) for m in members[1:]):
        # the graph is built once, with the first member's cutoff, for all of them
        sys.exit("ensemble_forecast: the --members differ in elements, cutoff or Δt; average models of one system")

    def mean_forward(graph, **options):
        outputs = [forward(graph, **options)] + [m(graph, **options) for m in members[1:]]
        return tuple(sum(parts) / len(parts) for parts in zip(*outputs))

    def fast(**options):
        for m in members[1:]:
            m.use_fast_inference(**options)
        return type(first).use_fast_inference(first, **options)

    first.forward, first.use_fast_inference = mean_forward, fast
    return first


def mae(args) -> None:
    from trajcast_dist.data.store import PairStore
    from trajcast_dist.reduce import LocalReducer
    from trajcast_dist.training.evaluate import evaluate

    members = [checkpoint.load_model(p, dtype=torch.float32)[0].use_fast_inference() for p in args.members]
    store, first = PairStore(args.store), members[0]
    rms = (first.scales.displacement_rms_A, first.scales.velocity_rms_A_per_fs)
    for label, forward in [*zip(args.members, members), ("average", None)]:
        # each member alone on the first's graph and scales; the average last, as it takes over the first's forward
        s = evaluate(first if forward else averaged(members), store, "test", LocalReducer(), 2, rms,
                     max_frames=args.max_frames, forward=forward).summary()
        print(f"{label}: MAE [1e-5 Å, 1e-5 Å/fs] " + " ".join(
            f"{key}={s[key] * 1e5:.2f}" for key in ("mae_d", "mae_v", "mae_d_H", "mae_v_H", "mae_d_O", "mae_v_O")))


def forecast(args, rest) -> int:
    load = checkpoint.load_model

    def load_members(path, *options, **kw):
        members = [load(p, *options, **kw) for p in args.members]
        if args.gain:
            gains = parse_element_values(args.gain, "--gain", "H=0.996,O=1.0035", "GAIN")
            for m, _ in members:
                m.set_velocity_gain(gains)
        return averaged([m for m, _ in members]), members[0][1]

    checkpoint.load_model = load_members  # the forecast CLI loads its model by path; the rest of its path runs as is
    from trajcast_dist.cli.main import main

    return main(["forecast", *rest, "--model", args.members[0]])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["mae", "forecast"])
    parser.add_argument("--members", nargs="+", required=True, help="model files, the first giving the settings")
    parser.add_argument("--gain",
                        help="velocity gains for every member, e.g. H=0.9965,O=1.0019 (an element not named gets 1)")
    parser.add_argument("--store", help="pair store with a test split (mae)")
    parser.add_argument("--max-frames", type=int, default=200)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    if args.mode == "mae":
        if not args.store:
            sys.exit("ensemble_forecast: mae needs --store (a pair store with a test split)")
        mae(args)
    else:
        sys.exit(forecast(args, argv[split + 1:]))
