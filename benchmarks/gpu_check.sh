#!/usr/bin/env bash
# GPU check (issue 19), under 7 minutes on one GPU: CVAE and CGAN training and sampling
# throughput at 64x64 and 128x128, the networks' counted FLOPs per image, the achieved TFLOP/s
# and the model FLOP utilisation against the same-run bfloat16 matmul ceiling (the networks
# train under bfloat16 autocast, amp=True; the float32 ceiling is in the JSON beside it);
# then the diffusion family (issue 33) at 8x8: training and sampling at 10-100 steps.
#
#   bash benchmarks/gpu_check.sh            # writes ${OUT:-.}/perf_gpu.json and
#                                           # ${OUT:-.}/diffusion_gpu.json, prints tables
#
# Run from the repository root. Nothing here needs the network.
set -euo pipefail
out="${OUT:-.}"
mkdir -p "$out"
python=${PYTHON:-python}
export PYTHONPATH="${PYTHONPATH:-.}"

nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name(0))"

# Rows: cvae and cgan on 64x64 and 128x128 blobs; no DP or on-demand rows (CPU questions).
timeout 270 "$python" benchmarks/perf.py --device cuda --generators cvae cgan \
    --data blobs64x64 blobs128x128 --no-extras --repeats 1 --out "$out/perf_gpu.json" \
    2>&1 | grep -v -i "warn" | tee "$out/perf_gpu.txt"

# The diffusion family: its U-Net on 8x8 digits, 2 epochs, then 2,048 samples per row.
timeout 120 "$python" benchmarks/diffusion_speed.py --device cuda --epochs 2 --samples 2048 \
    --out "$out/diffusion_gpu.json" 2>&1 | grep -v -i "warn" | tee "$out/diffusion_gpu.txt"
