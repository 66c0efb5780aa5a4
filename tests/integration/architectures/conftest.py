"""Session fixtures of the architecture matrix: each family's checkpoint built and loaded once.

`family_model(family)` writes the family's tiny random checkpoint (tests/integration/adapters/
family_checkpoints.py) into `<tmp>/<family>` and loads it with `workbench.load_model(folder)`;
`matrix_cell(family, analysis)` runs one cell once per session (see matrix.py), so the cell
tests and the check of docs/architectures.md share the work.
"""

from __future__ import annotations

import pytest

from tests.integration.adapters.family_checkpoints import build_checkpoint
from tests.integration.architectures.matrix import run_cell


@pytest.fixture(scope="session")
def family_model(tmp_path_factory):
    """`family_model(family)` -> the loaded `Model` of that family's tiny checkpoint."""
    from workbench import load_model

    root = tmp_path_factory.mktemp("architectures")
    models = {}

    def get(family: str):
        if family not in models:
            models[family] = load_model(str(build_checkpoint(family, root / family)))
        return models[family]

    return get


@pytest.fixture(scope="session")
def matrix_cell(family_model):
    """`matrix_cell(family, analysis)` -> its `Cell`, computed once per session."""
    cells = {}

    def get(family: str, analysis: str):
        if (family, analysis) not in cells:
            cells[family, analysis] = run_cell(family, analysis, family_model(family))
        return cells[family, analysis]

    return get
