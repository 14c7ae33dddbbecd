#!/usr/bin/env bash
# Distributed forecast on one node: P ranks, one torch thread each (or one GPU each with --device cuda).
#   launch/mpirun_forecast.sh 8 big_water.xyz --model water.pt --steps 1000 --stride 100
# The processor grid is chosen to minimise the halo; force one with --grid 2x2x2.
# On GPUs every rank binds to GPU (local rank % GPUs per node); add --cuda-aware if your MPI is CUDA-aware.
set -euo pipefail
ranks=${1:?usage: $0 RANKS STRUCTURE [trajcast-dist-forecast flags...]}
shift
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec mpirun -n "$ranks" trajcast-dist-forecast "$@" --threads "${THREADS_PER_RANK:-1}" --quiet
