"""How much potential energy a model's one-step position error puts into the system: on MD pairs of a store,
E(r + Δr_pred) − E(r + Δr_true) under the reference force field (LAMMPS), mean ± standard error per step.

    python benchmarks/energy_injection.py --model trajcast_dist/pretrained/water_dt5.pt \
        --store runs/water_dt5.zarr --system water --frames 100

A global thermostat removes this energy from all atoms alike, so where it lands (stiff bonds of light atoms)
decides which elements run hot and which cold; see docs/validation.md.
"""

import argparse

import numpy as np
import torch
from ase import Atoms

from trajcast_dist.data.lammps_md import potential_energies
from trajcast_dist.data.store import PairStore
from trajcast_dist.io.checkpoint import load_model
from trajcast_dist.training.batch import BatchMaker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--system", required=True, help="reference force field: water | quartz | paracetamol")
    parser.add_argument("--split", default="test")
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    model, _ = load_model(args.model, dtype=torch.float64)
    maker = BatchMaker(model.species_index, model.cutoff_A, torch.float64, "cpu")
    predicted, true = [], []
    with torch.no_grad():
        for frame in PairStore(args.store).read_frames(args.split, 0, args.frames):
            displacement = model(maker([frame]).graph)[0].numpy()
            for d, out in ((displacement, predicted), (np.asarray(frame["target_displacement"]), true)):
                out.append(Atoms(numbers=frame["species"], positions=np.asarray(frame["positions"]) + d,
                                 cell=frame["cell"], pbc=frame["pbc"]))
    gap = np.asarray(potential_energies(predicted, args.system)) - np.asarray(potential_energies(true, args.system))
    error = gap.std(ddof=1) / np.sqrt(gap.size)
    print(f"{args.model}: E(r + Δr_pred) − E(r + Δr_true) = {gap.mean():.4f} ± {error:.4f} eV per step over "
          f"{gap.size} {args.split} frames")


if __name__ == "__main__":
    main()
