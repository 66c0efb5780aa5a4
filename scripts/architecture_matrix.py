"""Run the architecture matrix and write docs/architectures.md from it.

Usage: `OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python scripts/architecture_matrix.py
[--check]`. Builds every family's tiny checkpoint (tests/integration/adapters/
family_checkpoints.py) in a temporary folder, loads it with `workbench.load_model`, runs every
cell of tests/integration/architectures/matrix.py (the same module the test uses) and writes
the table. `--check` writes nothing and exits 1 when the committed file differs. Exit 1 also
when a cell fails (the failing cells are listed on stderr; the table marks them in bold).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():  # as tests/conftest.py: Triton kernels interpreted on CPU
        os.environ.setdefault("TRITON_INTERPRET", "1")
    from tests.integration.adapters.family_checkpoints import FAMILIES, build_checkpoint
    from tests.integration.architectures.matrix import (
        ANALYSES,
        DOC,
        failures,
        render_markdown,
        run_cell,
    )
    from workbench import load_model

    cells = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            model = load_model(str(build_checkpoint(family, Path(tmp) / family)))
            for analysis in ANALYSES:
                cells[family, analysis] = cell = run_cell(family, analysis, model)
                print(f"{family:12} {analysis:22} {cell.status}", file=sys.stderr, flush=True)
    text = render_markdown(cells)
    print(f"{len(cells)} cells in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    for line in failures(cells):
        print(f"FAILED {line}", file=sys.stderr)
    if args.check:
        same = DOC.is_file() and DOC.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{DOC} is stale", file=sys.stderr)
        return 0 if same and not failures(cells) else 1
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}", file=sys.stderr)
    return 1 if failures(cells) else 0


if __name__ == "__main__":
    sys.exit(main())
