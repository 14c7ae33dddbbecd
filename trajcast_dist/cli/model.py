"""`trajcast-dist model init|import|thermostat|calibrate|info|list`: make a freshly initialised model, import one
trained with the reference implementation (IBM/trajcast), name the thermostat a model was validated with, calibrate
its velocities' mean square on held-out pairs, inspect a model file, list shipped ones."""

import math

import numpy as np
import torch
from ase.data import chemical_symbols

from trajcast_dist.cli.elements import parse_element_values, parse_species
from trajcast_dist.config import stored_model
from trajcast_dist.errors import UserError, check_positive
from trajcast_dist.io.atomic import check_writable
from trajcast_dist.io.checkpoint import (copy_with_metadata, describe_gains, describe_position_noise, load_model,
                                        read_metadata, save_model)

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    init = sub.add_parser("init", help="write a freshly initialised (untrained) model")
    init.add_argument("--config", required=True,
                      help="YAML config path, or a shipped name: water, tiny, water_cpu, quartz_cpu")
    init.add_argument("--species", required=True, help="comma-separated elements, e.g. H,O")
    init.add_argument("--out", required=True, help="model file to write (.pt)")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    init.add_argument("--overwrite", action="store_true")
    imp = sub.add_parser("import", help="convert a model trained with the reference implementation (IBM/trajcast)")
    imp.add_argument("weights", help="the reference model's state dict (torch.save(model.state_dict()))")
    imp.add_argument("--architecture", required=True, help="the reference architecture YAML it was built from")
    imp.add_argument("--type-map", required=True,
                     help="atomic number:reference atom type for every type, e.g. 1:0,8:1 (its type_mapper)")
    imp.add_argument("--dt", type=float, required=True, help="the time step Δt the model was trained for, in fs")
    imp.add_argument("--out", required=True, help="model file to write (.pt)")
    imp.add_argument("--isolated", action="store_true",
                     help="the model is for isolated molecules (pbc=False structures); default: periodic")
    imp.add_argument("--overwrite", action="store_true")
    thermo = sub.add_parser("thermostat", help="write a copy of a model that names the thermostat it was validated "
                                               "with: `forecast` uses it when no --thermostat/--tau is given")
    thermo.add_argument("model", help="model file")
    thermo.add_argument("--thermostat", required=True, choices=("csvr", "langevin"))
    thermo.add_argument("--tau", type=float, required=True, help="relaxation time in fs")
    thermo.add_argument("--equilibrate-ps", type=float, default=0.0, metavar="PS",
                        help="also name forecast's default --equilibrate-ps (for models validated from built "
                             "boxes only after it; default 0: none)")
    thermo.add_argument("--out", required=True, help="model file to write (.pt)")
    thermo.add_argument("--overwrite", action="store_true")
    calib = sub.add_parser("calibrate", help="write a copy of a model whose predicted velocities are scaled per "
                                             "element so their mean square matches the MD's on held-out pairs")
    calib.add_argument("model", help="model file")
    calib.add_argument("store", nargs="?",
                       help="pair store (.zarr) from `trajcast-dist data pairs`, at the model's Δt (not with --gain)")
    calib.add_argument("--gain", metavar="EL=G,...",
                       help="write these gains instead of measuring them, one per element of the model, e.g. "
                            "H=0.996,O=1.0035 (gains tuned by rollouts: docs/validation.md)")
    calib.add_argument("--split", default="val", help="split to measure on (default val)")
    calib.add_argument("--max-frames", type=int, help="measure on the first N pairs only (default: all; nearby "
                                                       "pairs are correlated, so a few hundred give a biased ratio)")
    calib.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    calib.add_argument("--position-noise", nargs="?", const=1.0, type=float, metavar="FRACTION",
                       help="also add noise FRACTION (default 1) × √2 σ_r to every position after each step, σ_r the "
                            "model's training input noise of that element: undoes the quench that input-noise "
                            "training builds in and refills the O-H stretch under CSVR, but heats the hydrogens, so "
                            "the gains move with it (docs/validation.md)")
    calib.add_argument("--out", required=True, help="model file to write (.pt)")
    calib.add_argument("--overwrite", action="store_true")
    calib.add_argument("--quiet", action="store_true", help="no progress bar")
    info = sub.add_parser("info", help="species, cutoff, Δt, dtype and weight count of a model file")
    info.add_argument("model", nargs="?", help="model file (default: the shipped default)")
    sub.add_parser("list", help="models shipped with the package")


def run(args) -> int:
    return {"init": _init, "import": _import, "thermostat": _thermostat, "calibrate": _calibrate, "info": _info,
            "list": _list}[args.action](args)


def _init(args) -> int:
    from trajcast_dist.config import load_config
    from trajcast_dist.model import TrajCast

    check_writable(args.out, args.overwrite, "model file")
    config = load_config(args.config)
    species = parse_species(args.species)
    torch.manual_seed(args.seed)
    model = TrajCast(config.model, species, scales=config.scales).to(getattr(torch, args.dtype))
    save_model(args.out, model, {"trained": False, "provenance": {"config": str(args.config), "seed": args.seed}})
    print(f"wrote untrained model {args.out}: {model.num_weights():,} weights, species "
          f"{','.join(chemical_symbols[z] for z in species)}")
    return 0


def _import(args) -> int:
    from trajcast_dist.io.reference_import import import_reference_model, parse_type_map

    check_writable(args.out, args.overwrite, "model file")
    if args.dt <= 0:
        raise UserError(f"--dt {args.dt} must be > 0 (fs)")
    model, provenance = import_reference_model(args.weights, args.architecture, parse_type_map(args.type_map),
                                               args.dt, periodic=not args.isolated)
    save_model(args.out, model, {"trained": True, "provenance": provenance})
    print(f"wrote {args.out}: {provenance['reference_model']} from {args.weights}, {model.num_weights():,} weights, "
          f"species {','.join(chemical_symbols[z] for z in model.species)}, Δt={args.dt} fs")
    return 0


def _thermostat(args) -> int:
    check_positive("--tau", args.tau, "fs")
    check_positive("--equilibrate-ps", args.equilibrate_ps, "ps", allow_zero=True)
    check_writable(args.out, args.overwrite, "model file")
    named = {"name": args.thermostat, "tau_fs": args.tau}
    if args.equilibrate_ps:
        named["equilibrate_ps"] = args.equilibrate_ps
    copy_with_metadata(args.model, args.out, {"thermostat": named})
    print(f"wrote {args.out}: {args.model} with thermostat {_describe_named(named)} (used by `forecast` unless "
          "--thermostat/--tau/--equilibrate-ps say otherwise)")
    return 0


def _calibrate(args) -> int:
    check_writable(args.out, args.overwrite, "model file")
    check_positive("--max-frames", args.max_frames)
    if (args.gain is None) == (args.store is None):
        raise UserError("model calibrate: give a pair store to measure the gains on, or --gain EL=G,... to set "
                        "them, not both")
    check_positive("--position-noise", args.position_noise, "× √2 σ_r")
    model, meta = load_model(args.model, dtype=getattr(torch, args.dtype))
    noise = _position_noise(meta, model.species, args.position_noise) if args.position_noise else {}
    if args.gain is not None:
        update = {"velocity_gain": _parse_gains(args.gain, model.species), "velocity_gain_source": {"set": args.gain}}
    else:
        update = {"velocity_gain": _measured_gains(args, model), "velocity_gain_source": {
            "store": str(args.store), "split": args.split, "max_frames": args.max_frames}}
    copy_with_metadata(args.model, args.out, {**update, "position_noise_A": noise})
    print(f"wrote {args.out}: {args.model} with velocity gains {describe_gains(update['velocity_gain']) or 'of 1'} "
          "(applied before the conservation step)" + (
              f" and position noise σ = {describe_position_noise(noise)} per step ({args.position_noise:g} × √2 × the "
              "training input noise)" if args.position_noise else ""))
    return 0


def _measured_gains(args, model) -> dict[str, float]:
    from trajcast_dist.data.store import PairStore
    from trajcast_dist.training.calibration import kinetic_ratios

    store = PairStore(args.store)
    store.check_split(args.split)
    store.check_dt(model.dt_fs)
    model.set_velocity_gain(None)  # measure the network itself, whatever gain the file had
    ratios = kinetic_ratios(model.use_fast_inference(), store, args.split, max_frames=args.max_frames,
                            progress=not args.quiet)
    print(f"# {args.model} on {args.store} split {args.split!r}, {args.max_frames or 'all'} pairs: "
          "⟨|v̂′|²⟩ / ⟨|v′|²⟩ per element (± standard error over frames)")
    for z, r in ratios.items():
        print(f"{chemical_symbols[z]:<3} {r.ratio:.5f} ± {r.error:.5f}   gain {r.gain:.5f}")
    return {str(z): r.gain for z, r in ratios.items()}


def _position_noise(meta: dict, species: list[int], fraction: float) -> dict[str, float]:
    """fraction × √2 σ_r per element, σ_r the input position noise the model was trained with
    (TrajCast.position_noise_A)."""
    from trajcast_dist.training.targets import Augmentation

    trained = Augmentation.from_training((meta.get("training") or {}).get("training_config") or {})
    sigma = np.broadcast_to(trained.displacement_sigma(np.asarray(species)), (len(species), 1))[:, 0]
    return {str(z): fraction * math.sqrt(2.0) * float(value) for z, value in zip(species, sigma)}


def _parse_gains(text: str, species: list[int]) -> dict[str, float]:
    """`H=0.996,O=1.0035` → {"1": 0.996, "8": 1.0035}, one positive gain for every element of the model."""
    gains = parse_element_values(text, "--gain", "H=0.996,O=1.0035", "GAIN")
    if sorted(gains) != sorted(species):
        want = ",".join(chemical_symbols[z] for z in species)
        raise UserError(f"--gain {text}: give one gain for each element of the model ({want})")
    return {str(z): gains[z] for z in sorted(gains)}


def _info(args) -> int:
    from trajcast_dist.pretrained import default_model_path

    path = args.model or default_model_path()
    meta, _ = read_metadata(path)
    config = meta["config"]
    scales = stored_model(config, meta.get("scales"), str(path))[1]
    print(f"model       {path}")
    print(f"species     {','.join(chemical_symbols[z] for z in meta['species'])}")
    print(f"cutoff      {meta['cutoff_A']} Å")
    print(f"dt          {meta['dt_fs']} fs")
    print(f"dtype       {meta['dtype']}")
    print(f"weights     {meta['num_weights']:,}")
    print(f"layers      {config['num_layers']} × {config['hidden_irreps']}")
    print(f"periodic    {config['periodic']}")
    print(f"trained     {meta.get('trained', False)}")
    print(f"scales      neighbours {scales.avg_num_neighbors:.4g}, Δr RMS {scales.displacement_rms_A:.4g} Å, "
          f"v RMS {scales.velocity_rms_A_per_fs:.4g} Å/fs, T {scales.temperature_K:.4g} K")
    if gains := describe_gains(meta.get("velocity_gain")):
        print(f"gain        {gains} (predicted velocities, `model calibrate`)")
    if noise := describe_position_noise(meta.get("position_noise_A")):
        print(f"pos. noise  σ = {noise} per step (`model calibrate`)")
    if meta.get("thermostat"):
        print(f"thermostat  {_describe_named(meta['thermostat'])} (forecast's default)")
    if meta.get("statistics"):
        print("data        (statistics of the last training store)")
    for key, value in (meta.get("statistics") or {}).items():
        print(f"  {key:28s} {value}")
    return 0


def _describe_named(named: dict) -> str:
    text = f"{named['name']} τ={named['tau_fs']:g} fs"
    return text + (f", after {named['equilibrate_ps']:g} ps of equilibration" if named.get("equilibrate_ps") else "")


def _list(args) -> int:
    from trajcast_dist.pretrained import DEFAULT_MODEL, shipped_models

    models = shipped_models()
    if not models:
        print("no models are shipped in this version")
    for name, path in models.items():
        meta, _ = read_metadata(path)
        mark = " (default)" if name == DEFAULT_MODEL else ""
        species = ",".join(chemical_symbols[z] for z in meta["species"])
        print(f"{name}{mark}: {species}, Δt={meta['dt_fs']} fs, cutoff={meta['cutoff_A']} Å, {path}")
        _provenance(name, path)
    return 0


def _provenance(name: str, path) -> None:
    """Where the model's validation numbers come from: its card and the MD run it is judged against."""
    from trajcast_dist.analysis.reference import read_reference_curves
    from trajcast_dist.pretrained import reference_curves

    card = path.with_suffix(".md")
    if card.is_file():
        print(f"  card       {card} (training data, test errors, validation against MD; "
              "measurements in docs/validation.md of the source repository)")
    curves = reference_curves(name)
    if curves:
        print(f"  MD curves  {curves}: {read_reference_curves(curves)['source']}")
