#!/usr/bin/env bash
# The same loop through a DeepSpeed engine (ZeRO-1 or ZeRO-2 partition the Adam state over ranks).
#   launch/deepspeed_train.sh [NPROC] [ZERO_CONFIG] [CONFIG] [extra flags ...]
# e.g. launch/deepspeed_train.sh 2 configs/deepspeed_zero2.json configs/tiny.yaml --data toy.zarr --out runs/ds
# Needs `pip install 'trajcast-dist[deepspeed]'`. On CPU, DS_ACCELERATOR=cpu and gloo are used.
# torchrun starts the ranks (the `deepspeed` launcher works too: deepspeed --num_gpus N -m trajcast_dist.train ...).
# Export a checkpoint as a forecast model: python -m trajcast_dist.train --export OUT/checkpoints/best.pt --out m.pt
set -euo pipefail
NPROC=${1:-2}; ZERO=${2:-configs/deepspeed_zero1.json}; CONFIG=${3:-configs/water.yaml}
shift $(( $# < 3 ? $# : 3 ))
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if ! python -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    export DS_ACCELERATOR=cpu
fi
python -m trajcast_dist.train --config "$CONFIG" --engine deepspeed --deepspeed-config "$ZERO" "$@" --check --nproc "$NPROC"
exec torchrun --standalone --nproc_per_node "$NPROC" -m trajcast_dist.train --config "$CONFIG" \
    --engine deepspeed --deepspeed-config "$ZERO" "$@"
