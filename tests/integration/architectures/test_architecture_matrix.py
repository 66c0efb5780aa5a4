"""Every analysis on every model family: it runs (sane numbers) or refuses with its documented
reason, and docs/architectures.md is what this run produces.

The families are tiny random checkpoints saved with `save_pretrained` and loaded by folder
(tests/integration/adapters/family_checkpoints.py); the analyses, the refusal table and the
known-defect table are in matrix.py. A cell fails on an undocumented refusal, any other
exception, a failed sanity check, or a table row that no longer applies; a known defect is
an xfail until its row is deleted.
"""

from __future__ import annotations

import pytest

from tests.integration.adapters.family_checkpoints import FAMILIES
from tests.integration.architectures.matrix import (
    ANALYSES,
    DEFECTS,
    DOC,
    REFUSALS,
    REGENERATE,
    render_markdown,
)

CELLS = [(family, analysis) for family in FAMILIES for analysis in ANALYSES]


@pytest.mark.parametrize(("family", "analysis"), CELLS, ids=[f"{f}-{a}" for f, a in CELLS])
def test_analysis_runs_or_refuses_as_documented(matrix_cell, family, analysis):
    cell = matrix_cell(family, analysis)
    if cell.status == "defect":
        pytest.xfail(f"known defect (DEFECTS in matrix.py): {cell.message}")
    assert cell.status in ("ok", "refused"), f"{family} x {analysis}: {cell.status}: {cell.message}"


def test_tables_name_real_cells():
    """A typo in a table row would silently document nothing."""
    for family, analysis in (*REFUSALS, *DEFECTS):
        assert family in FAMILIES and analysis in ANALYSES, (family, analysis)
    assert not set(REFUSALS) & set(DEFECTS)


def test_every_circuit_method_has_a_column():
    from circuits.tracing import METHODS

    assert {f"circuit:{method}" for method in METHODS} <= set(ANALYSES)


def test_docs_architectures_md_is_this_run(matrix_cell):
    cells = {(family, analysis): matrix_cell(family, analysis) for family, analysis in CELLS}
    expected = render_markdown(cells)
    written = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
    assert written == expected, f"docs/architectures.md is stale; regenerate: {REGENERATE}"
