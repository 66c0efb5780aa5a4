"""Tests for `workbench.results`: exact JSON round trips of result dataclasses."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from pandas.testing import assert_frame_equal

from workbench.results import SCHEMA_VERSION, Result


@dataclass(frozen=True)
class Inner(Result):
    """A small result nested inside another."""

    label: str
    values: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"value": self.values})

    def plot(self, kind: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Everything(Result):
    """One field of every supported kind."""

    tensors: dict[str, torch.Tensor]
    arrays: list[Any]
    frame: pd.DataFrame
    inner: Inner
    shape: tuple[int, ...]
    nested: list[Any]
    floats: tuple[float, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def plot(self, kind: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"main": self.frame, "inner": self.inner.to_frame()}


@dataclass(frozen=True)
class Holder(Result):
    """A single free-form field, for error cases."""

    value: Any

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame()

    def plot(self, kind: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError


def _everything() -> Everything:
    special = torch.tensor([1.5, math.nan, math.inf, -math.inf, -0.0, 1e-40])  # [6]
    tensors = {
        "f32": torch.cat([special, torch.randn(7, generator=torch.Generator().manual_seed(0))]),
        "f16": torch.linspace(-3, 3, 12).to(torch.float16).reshape(3, 4),
        "bf16": (torch.arange(24, dtype=torch.float32) / 7).to(torch.bfloat16).reshape(2, 3, 4),
        "i64": torch.tensor([[-(2**62), 0, 2**62 + 5]], dtype=torch.int64),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.25),
        "empty": torch.empty(0, 5),
        "strided": torch.arange(12.0).reshape(3, 4).t(),  # non-contiguous [4, 3]
    }
    arrays = [
        np.array([[1.0, np.nan], [np.inf, -0.0]]),
        np.arange(5, dtype=">i4"),  # big-endian stays big-endian
        np.array(["a", "héllo"]),
        np.zeros((2, 0), dtype=np.int8),
        np.array(7, dtype=np.uint16),
        np.float32(0.1),
        np.float64(2.5),  # a float subclass: must come back as np.float64
        np.array([(1, 2.0)], dtype=[("a", "<i2"), ("b", "<f8")]),
    ]
    index = pd.Index([10, 20, 30], name="row")
    frame = pd.DataFrame(
        {
            "layer": np.array([0, 0, 1], dtype=np.int64),
            "entropy": np.array([0.5, np.nan, 2.0], dtype=np.float32),
            "token": ["a", None, "c"],
            "obj": pd.Series(["x", "y", None], dtype=object, index=index),
            "cat": pd.Categorical(["u", "v", "u"]),
        },
        index=index,
    )
    return Everything(
        tensors=tensors,
        arrays=arrays,
        frame=frame,
        inner=Inner(label="inner", values=np.array([1.0, 2.0])),
        shape=(1, 2, 3),
        nested=[(1, ("a", None)), [True, 2.0], {"k": (math.nan,)}],
        floats=(math.nan, math.inf, -math.inf, -0.0, 0.1, 1e308),
        meta={"$t": "not a tag", "config": {"seed": 0, "names": ["a", "b"]}},
    )


def _same_float(a: float, b: float) -> bool:
    return type(a) is type(b) and (math.isnan(a) and math.isnan(b) or repr(a) == repr(b))


def _assert_tensor_exact(a: torch.Tensor, b: torch.Tensor) -> None:
    assert b.dtype == a.dtype and b.shape == a.shape and b.device.type == "cpu"
    raw = [t.contiguous().reshape(-1).view(torch.uint8).tolist() for t in (a, b)]
    assert raw[0] == raw[1]


def _assert_array_exact(a: Any, b: Any) -> None:
    assert type(b) is type(a) and b.dtype == a.dtype and np.shape(b) == np.shape(a)
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_round_trip_is_bit_exact() -> None:
    original = _everything()
    text = original.to_json()
    restored = Result.from_json(text)
    assert type(restored) is Everything
    assert restored.tensors.keys() == original.tensors.keys()
    for name, tensor in original.tensors.items():
        _assert_tensor_exact(tensor, restored.tensors[name])
    for a, b in zip(original.arrays, restored.arrays, strict=True):
        _assert_array_exact(a, b)
    assert original.frame["obj"].dtype == object
    assert_frame_equal(restored.frame, original.frame)
    assert restored.frame["obj"].tolist() == ["x", "y", None]
    assert type(restored.inner) is Inner and restored.inner.label == "inner"
    _assert_array_exact(original.inner.values, restored.inner.values)
    assert restored.shape == (1, 2, 3) and isinstance(restored.shape, tuple)
    assert restored.nested[0] == (1, ("a", None)) and restored.nested[1] == [True, 2.0]
    assert isinstance(restored.nested[2]["k"], tuple) and math.isnan(restored.nested[2]["k"][0])
    assert all(_same_float(a, b) for a, b in zip(original.floats, restored.floats, strict=True))
    assert restored.meta == original.meta and restored.note is None
    assert restored.to_json() == text  # a fixed point


def test_json_is_standard_and_versioned() -> None:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    body = json.loads(_everything().to_json(), parse_constant=refuse)
    assert body["schema_version"] == SCHEMA_VERSION
    assert body["type"] == "Everything"


def test_tables_default_and_override() -> None:
    inner = Inner(label="x", values=np.array([3.0]))
    assert list(inner.tables()) == ["main"]
    assert_frame_equal(inner.tables()["main"], inner.to_frame())
    assert list(_everything().tables()) == ["main", "inner"]


def test_from_json_on_subclass_checks_the_type() -> None:
    text = Inner(label="x", values=np.array([1.0])).to_json()
    assert isinstance(Inner.from_json(text), Inner)
    with pytest.raises(TypeError, match="Inner"):
        Holder.from_json(text)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({1, 2}, "value"),
        ([1, object()], "value[1]"),
        ({"cfg": {"fn": print}}, "value['cfg']['fn']"),
        (np.array([object()]), "value"),
    ],
)
def test_unknown_value_type_names_the_field(value: Any, path: str) -> None:
    with pytest.raises(ValueError, match=path.replace("[", r"\[")):
        Holder(value=value).to_json()


def test_non_str_dict_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="dict keys"):
        Holder(value={1: "a"}).to_json()


def test_unknown_result_type_and_version() -> None:
    body = json.loads(Holder(value=1).to_json())
    with pytest.raises(ValueError, match="NoSuchResult"):
        Result.from_json(json.dumps({**body, "type": "NoSuchResult"}))
    with pytest.raises(ValueError, match="schema_version"):
        Result.from_json(json.dumps({**body, "schema_version": 999}))


def test_qualname_collision_across_modules_is_an_error() -> None:
    with pytest.raises(TypeError, match="already used"):
        type("Inner", (Result,), {"__module__": "elsewhere", "__qualname__": "Inner"})


@dataclass(frozen=True, slots=True)
class Slotted(Result):
    """`slots=True` makes a second class: the registry must hold the final one."""

    x: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"x": [self.x]})

    def plot(self, kind: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError


def test_slots_dataclass_registers_the_final_class() -> None:
    restored = Result.from_json(Slotted(x=4).to_json())
    assert type(restored) is Slotted and restored.x == 4
