"""Hostile arguments to the Ray executor: each is refused with one `ValueError` naming the
argument, before Ray is even imported (bools are not counts). Nothing here imports Ray: the
cluster fixture of tests/integration/executors must be the first to (Ray reads its
authentication settings once, at import)."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest

if importlib.util.find_spec("ray") is None:
    pytest.skip("the ray extra is not installed (pip install .[ray])", allow_module_level=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_workers": 0}, "num_workers: expected a positive integer, got 0"),
        ({"num_workers": -2}, "num_workers: expected a positive integer, got -2"),
        ({"num_workers": True}, "num_workers: expected a positive integer, got True"),
        ({"num_workers": 2.0}, "num_workers: expected a positive integer, got 2.0"),
        ({"num_workers": "2"}, "num_workers: expected a positive integer, got '2'"),
        ({"max_retries": -1}, "max_retries: expected a non-negative integer, got -1"),
        ({"max_retries": False}, "max_retries: expected a non-negative integer, got False"),
        ({"max_retries": 1.5}, "max_retries: expected a non-negative integer, got 1.5"),
    ],
)
def test_bad_executor_arguments_are_refused_before_ray_starts(kwargs, message):
    from workbench.executors import RayExecutor

    imported = "ray" in sys.modules
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        RayExecutor(**kwargs)
    assert ("ray" in sys.modules) == imported  # refused before importing Ray
