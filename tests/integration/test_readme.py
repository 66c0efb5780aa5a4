"""The Python examples in README.md and docs/*.md run as written.

The README's store example needs a result, so it is run with a tiny one. Examples in a file
share one namespace, in order, so a later block may use names an earlier one defined.
"""

from __future__ import annotations

import re
from dataclasses import make_dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def _tiny_result():
    import pandas as pd

    from workbench.results import Result

    cls = make_dataclass(
        "ReadmeResult",
        [("values", tuple)],
        bases=(Result,),
        frozen=True,
        namespace={
            "to_frame": lambda self: pd.DataFrame({"value": self.values}),
            "plot": lambda self, kind=None, **kw: None,
        },
    )
    return cls((1.0, 2.0))


def test_readme_has_python_examples():
    assert len(python_blocks(DOCS[0])) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_examples_run(path, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"result": _tiny_result()} if path.name == "README.md" else {}
    for index, block in enumerate(python_blocks(path)):
        exec(compile(block, f"{path.name}[{index}]", "exec"), namespace)
