"""The README's Python examples run as written (the store example needs a result, so it is
run with one)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(python_blocks()) >= 3


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_example_runs(index, tmp_path, monkeypatch, capsys):
    import pandas as pd

    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path))
    from workbench.results import Result

    namespace: dict = {}
    if "result" in python_blocks()[index] and "result =" not in python_blocks()[index]:
        from dataclasses import make_dataclass

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
        namespace["result"] = cls((1.0, 2.0))
    exec(compile(python_blocks()[index], f"README.md[{index}]", "exec"), namespace)
