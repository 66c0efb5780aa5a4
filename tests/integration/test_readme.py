"""The Python examples in README.md and docs/*.md run as written.

Examples in a file share one namespace, in order, so a later block may use names an earlier
one defined (the README's store example saves the `stats` of its tour).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(python_blocks(DOCS[0])) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_examples_run(path, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for index, block in enumerate(python_blocks(path)):
        exec(compile(block, f"{path.name}[{index}]", "exec"), namespace)
