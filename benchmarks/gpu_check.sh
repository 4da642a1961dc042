#!/usr/bin/env bash
# Every subcommand on a device against a reference device, and the engine against one Cholesky
# factorization there: `benchmarks/gpu_check.sh [DEVICE] [REFERENCE]` (default: cuda cpu).
# Numbers must agree (same accuracies; FACT / AGOP matrices to 1e-6 relative in float64); the
# result goes to benchmarks/results/gpu_check.json and the exit status is 1 when a check fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"
device="${1:-cuda}"
reference="${2:-cpu}"
shift $(( $# < 2 ? $# : 2 ))
cd "$here/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
exec "$python" benchmarks/gpu_check.py --device "$device" --reference "$reference" "$@"
