#!/bin/bash
# The checks and figures that need a GPU, in one run (CI has no GPU): the CUDA tests (model, forecast, training
# and two MPI ranks on the GPU against the CPU; cuEquivariance against e3nn), forecast speed e3nn vs cuEquivariance
# vs the fast path, and training throughput. Each part has its own time limit, so one slow part cannot take the rest.
#
#   benchmarks/gpu_check.sh OUT_DIR        (the package importable by python3: installed, or on PYTHONPATH)
#
# Writes OUT_DIR/{gpu.txt,pytest.log,forecast_speed.md,train_throughput.md}; benchmarks/RESULTS.md quotes them.
set -u
out=${1:?usage: benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
cli="python3 -m trajcast_dist.cli.main"

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, e3nn; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'e3nn', e3nn.__version__)"
  python3 -c "import cuequivariance_torch as c; print('cuequivariance-torch', c.__version__)"
  python3 -c "import cuequivariance_ops_torch; print('cuequivariance-ops-torch: imports')" 2>&1 | tail -n 1
  git rev-parse --short HEAD; date -u; } > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"

timeout 150 python3 -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py tests/test_speed_backends.py 2>&1 \
  | tee "$out/pytest.log" | tail -n 15

speed() { timeout "$1" $cli bench forecast --device cuda --steps 5 --warmup 2 --results "$out/forecast_speed.md" \
  "${@:2}" 2>&1 | grep -v "^|" | tail -n 8; }
speed 60 --config water --backend e3nn --dtype float32,float64 --path exact --atoms 1536,5184 \
  --notes "paper-size model (water.yaml), e3nn"
speed 60 --config water --backend cueq --dtype float32,float64 --path exact --atoms 1536,5184 \
  --notes "paper-size model (water.yaml), cuEquivariance"
speed 45 --config water --backend e3nn --dtype float32 --path fast-torch --atoms 1536,5184 \
  --notes "paper-size model (water.yaml), fast (tabulated) path"
speed 45 --config water_cpu --backend e3nn --dtype float32 --path exact,fast-torch --atoms 192,1536,5184 \
  --notes "the shipped model's size (water_cpu.yaml), exact vs fast (tabulated) path"

timeout 120 python3 benchmarks/train_throughput.py --configs water_cpu water --paths exact fast --dtypes float32 \
  --ranks 1 --steps 10 --warmup 2 --device cuda --batch 8 2>&1 | tee "$out/train_throughput.md" | tail -n 6
