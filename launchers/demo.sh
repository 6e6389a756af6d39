#!/usr/bin/env bash
# The demo behind `make demo`: synthetic shards (written by vasot-train on first use), VASOT with the ResNet-50 encoder at
# reduced resolution on 2 CPU processes, evaluation of the untrained and the trained encoder.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
RUN_ID=${RUN_ID:-demo-$(date +%Y%m%d-%H%M%S)}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

$PY -m torch.distributed.run --standalone --nproc_per_node=2 launchers/train.py \
    --config configs/demo.yaml train.run_id="$RUN_ID" "$@"
$PY launchers/compare.py --run "runs/demo/$RUN_ID"
