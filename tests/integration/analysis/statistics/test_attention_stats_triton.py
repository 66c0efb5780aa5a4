"""`attention_stats` with the Triton backend agrees with the chunked torch backend on real models.

On a CUDA machine the model runs on the GPU (compiled kernel, fp32 dot products in TF32, hence
the looser tolerance there). Without one, the kernel runs on CPU tensors through the Triton
interpreter, which must be on before triton is first imported; the check then runs in a fresh
process started with TRITON_INTERPRET=1, so it does not depend on what this one imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

PROMPTS = [
    "def add(a, b): return a + b\ndef add(a, b): return a + b\n",
    "import os",
]
CHECK = """
import json, sys, torch
from kernels import STAT_NAMES
from analysis.statistics.attention_stats import attention_stats
from workbench import load_model

prompts, device = json.loads(sys.argv[1]), sys.argv[2]
model = load_model("tiny-induction", device=device)
kwargs = {"stats": STAT_NAMES, "mass_block": 8, "batch_size": 2}
triton = attention_stats(model, prompts, backend="triton", **kwargs)
chunked = attention_stats(model, prompts, backend="chunked", **kwargs)
diffs = {}
for name in STAT_NAMES:
    a, b = getattr(triton, name), getattr(chunked, name)
    assert torch.equal(a.isnan(), b.isnan()), name
    scaled = (a - b).abs() / b.abs().clamp_min(1.0)  # absolute below 1, relative above
    diffs[name] = float(scaled.nan_to_num().max())
print(json.dumps(diffs))
"""


def max_differences(device: str) -> dict[str, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    if device == "cpu":
        env["TRITON_INTERPRET"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(PROMPTS), device],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_triton_backend_matches_chunked_on_tiny_induction():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tolerance = 2e-3 if device == "cuda" else 1e-5
    diffs = max_differences(device)
    assert set(diffs) == {
        *("lse", "entropy", "max_prob", "sink", "mean_distance", "sum_sq"),
        *("distance_hist", "block_mass"),
    }
    assert max(diffs.values()) <= tolerance, diffs
