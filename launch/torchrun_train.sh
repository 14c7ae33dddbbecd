#!/usr/bin/env bash
# Train TrajCast with DDP on one node: N processes (GPUs, or CPU ranks with gloo).
#   launch/torchrun_train.sh [NPROC] [CONFIG] [extra flags for trajcast_dist.train ...]
# e.g. launch/torchrun_train.sh 4 configs/water.yaml --data runs/water_dt5.zarr --out runs/water
# The global batch (training.batch_size) must be a multiple of NPROC. Re-run with --resume to continue.
set -euo pipefail
NPROC=${1:-2}; CONFIG=${2:-configs/water.yaml}; shift $(( $# < 2 ? $# : 2 ))
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# Check config, data, species and batch size once, before any worker starts.
python -m trajcast_dist.train --config "$CONFIG" "$@" --check --nproc "$NPROC"
exec torchrun --standalone --nproc_per_node "$NPROC" -m trajcast_dist.train --config "$CONFIG" "$@"
