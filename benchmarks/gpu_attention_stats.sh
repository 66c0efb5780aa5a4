#!/usr/bin/env bash
# One command on a CUDA machine: the kernel tests compiled on the GPU (TRITON_INTERPRET unset),
# then the GPU section of benchmarks/attention_stats.py, merged into its JSON.
#
#   bash benchmarks/gpu_attention_stats.sh [OUTPUT_JSON]
#
# OUTPUT_JSON defaults to benchmarks/results/attention_stats.json; another path starts as a copy
# of it, so the CPU sections are kept. PY overrides the interpreter (default .venv/bin/python,
# else python3); SKIP_TESTS=1 skips the tests. Expect several minutes, mostly Triton compiles
# (every statistics subset and tile shape is its own kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
RESULTS=benchmarks/results/attention_stats.json
OUTPUT=${1:-$RESULTS}
export HF_HUB_OFFLINE=1 TRITON_DEFAULT_FP_FUSION=1 PYTHONPATH=$PWD
unset TRITON_INTERPRET
if [ "$OUTPUT" != "$RESULTS" ] && [ -f "$RESULTS" ]; then
    mkdir -p "$(dirname "$OUTPUT")" && cp "$RESULTS" "$OUTPUT"
fi
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
    "$PY" -m pytest -q -x -p no:cacheprovider tests/unit/kernels
fi
"$PY" benchmarks/attention_stats.py --gpu --no-cpu --no-model --output "$OUTPUT"
