"""Result base type: every analysis returns a frozen dataclass deriving from `Result`.

The convention (docs/architecture.md, "Conventions"):
- A one-shot analysis is a function `fn(model, ..., *, options) -> XResult`. A stateful or
  learned tool (`HeadHunter`, `TokenAttack`) is a scikit-learn-style estimator: keyword-only
  `__init__`, `fit(...) -> self`, learned attributes ending in `_`, its outcome in `result_`
  (an `XResult`).
- Every result is a frozen dataclass deriving from `Result` with the class attributes `kind`
  (its one canonical run-store kind, snake_case) and `plot_kinds` (what `.plot(kind)` draws;
  `plot_kinds[0]` is the default), a `model_name` field (or property), `.to_frame()`,
  `.plot(kind=plot_kinds[0], ...)` and an exact JSON round trip.
- `result_type(kind)` finds a result class from a stored kind; `RunStore.save(result)` stores a
  run under `result.kind`, and runs stored under an older kind name (`KIND_ALIASES`, e.g.
  "corpus-stats") are read back under the canonical one (`canonical_kind`).

A result holds finished numbers (CPU tensors, arrays, frames, token strings, the config used);
`to_frame()` gives the long pandas table, `plot()` draws a plotly figure from the stored numbers
and never recomputes, `tables()` names every table the run store should write as Parquet.

`to_json()` / `Result.from_json()` round-trip a result exactly. The JSON is standard (no NaN
literals) and tagged: `{"schema_version": 1, "type": <class __qualname__>, "fields": {...}}`.
Non-JSON values are objects with a `"$t"` tag: floats nan/inf, tuples, nested results, numpy
arrays and torch tensors (dtype, shape, raw bytes in base64, so bit-exact, bfloat16 included),
DataFrames (Parquet bytes in base64). Dicts need str keys; lists stay lists.

Result types register themselves when their module is imported; the packages import their
modules eagerly, so `import analysis, circuits` registers every type the workbench ships (the
front ends do that before decoding a stored run; the core never imports them).

Caveats:
- Subclasses register by `__qualname__` when defined; two result classes with the same
  qualname in different modules raise `TypeError` (redefining in the same module replaces,
  which keeps `@dataclass(slots=True)` and module reloads working). Define classes at module
  level: a class defined inside a function is registered only once that function runs, and a
  nested `slots=True` dataclass registers the wrong class (dataclasses sets its qualname late).
- Only `init=True` fields are stored; `from_json` calls the constructor, so `__post_init__` runs.
- Tensors come back detached, contiguous and on CPU (no grad, no device). Raw bytes are in
  the writer's native byte order (little-endian everywhere in practice); numpy arrays record
  their byte order in the dtype. Object-dtype numpy arrays and sparse tensors are refused.
- DataFrames go through pyarrow Parquet, so what Parquet cannot hold (mixed-type object
  columns, `df.attrs`) is refused or lost; object-dtype string columns are restored as object.
"""

from __future__ import annotations

import abc
import base64
import dataclasses
import io
import json
import math
from typing import IO, TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

if TYPE_CHECKING:
    import plotly.graph_objects as go

SCHEMA_VERSION = 1
KIND_ALIASES: dict[str, str] = {"corpus-stats": "corpus_stats", "stats": "attention_stats"}
"""Run-store kinds used before the kinds were fixed on the result classes -> canonical kind."""
_TAG = "$t"
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class Result(abc.ABC):
    """Base for analysis results; subclasses are `@dataclass(frozen=True)`.

    A concrete result sets the class attributes `kind` (canonical run-store kind, snake_case,
    unique among result types) and `plot_kinds` (`.plot()` kinds, default first), and has a
    `model_name`. Classes without a `kind` (ad-hoc results in tests, scripts) still encode and
    store, but the store needs an explicit `kind=` for them.
    """

    kind: ClassVar[str] = ""
    plot_kinds: ClassVar[tuple[str, ...]] = ()
    _registry: ClassVar[dict[str, type[Result]]] = {}
    _kinds: ClassVar[dict[str, type[Result]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        key = cls.__qualname__
        existing = Result._registry.get(key)
        if existing is not None and existing.__module__ != cls.__module__:
            raise TypeError(
                f"result type name {key!r} is already used by {existing.__module__}.{key}; "
                f"rename {cls.__module__}.{key}"
            )
        Result._registry[key] = cls
        kind = cls.__dict__.get("kind")
        if kind:
            same = Result._kinds.get(kind)
            if same is not None and (same.__module__, same.__qualname__) != (cls.__module__, key):
                raise TypeError(
                    f"result kind {kind!r} is already used by {same.__module__}.{same.__qualname__}"
                )
            Result._kinds[kind] = cls

    @classmethod
    def _stored_fields(cls, fields: dict[str, Any]) -> dict[str, Any]:
        """Hook for `from_json`: rename fields written by older versions (default: as is)."""
        return fields

    @abc.abstractmethod
    def to_frame(self) -> pd.DataFrame:
        """The result as one long pandas table."""

    @abc.abstractmethod
    def plot(self, kind: str | None = None, **kwargs: Any) -> go.Figure:
        """Draw the stored numbers as a plotly figure (never recomputes)."""

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table to store with the run, by name; `main` is `to_frame()`."""
        return {"main": self.to_frame()}

    def to_json(self, *, indent: int | None = None) -> str:
        """Encode the result as standard JSON that `Result.from_json` restores exactly."""
        body = {"schema_version": SCHEMA_VERSION, **_encode_result(self, "")}
        return json.dumps(body, indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        """Rebuild a result from `to_json()` output; the class comes from its `"type"` field."""
        body = json.loads(text)
        version = body.get("schema_version") if isinstance(body, dict) else None
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported result schema_version {version!r}")
        result = _decode_result(body)
        if not isinstance(result, cls):
            raise TypeError(f"JSON holds a {type(result).__qualname__}, not a {cls.__qualname__}")
        return result


def canonical_kind(kind: str) -> str:
    """The canonical run-store kind for `kind` (older names mapped through `KIND_ALIASES`)."""
    return KIND_ALIASES.get(kind, kind) if isinstance(kind, str) else kind


def result_kinds() -> dict[str, type[Result]]:
    """Every registered result class by its kind (import `analysis` and `circuits` first)."""
    return dict(sorted(Result._kinds.items()))


def result_type(kind: str) -> type[Result]:
    """The result class stored under `kind` (an older alias works); ValueError when unknown."""
    cls = Result._kinds.get(canonical_kind(kind)) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(sorted(Result._kinds)) or "none registered"
        raise ValueError(f"kind: unknown result kind {kind!r} (known: {known})")
    return cls


def frame_to_parquet(df: pd.DataFrame, dest: IO[bytes]) -> None:
    """Write `df` as Parquet (pyarrow) to an open binary file."""
    df.to_parquet(dest, engine="pyarrow")


def frame_from_parquet(source: str | IO[bytes]) -> pd.DataFrame:
    """Read a Parquet file written by `frame_to_parquet` back into an equal DataFrame."""
    table = pq.read_table(source)
    df = table.to_pandas()
    meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
    for col in meta.get("columns", []):
        name = col.get("name")
        if col.get("numpy_type") == "object" and name in df.columns and df[name].dtype != object:
            values = df[name]
            df[name] = values.astype(object).where(values.notna(), None)
    return df


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encode_result(result: Result, path: str) -> dict[str, Any]:
    if not dataclasses.is_dataclass(result):
        raise ValueError(f"{path or 'result'}: {type(result).__qualname__} is not a dataclass")
    fields = {
        f.name: _encode(getattr(result, f.name), f"{path}{f.name}")
        for f in dataclasses.fields(result)
        if f.init
    }
    return {"type": type(result).__qualname__, "fields": fields}


def _encode(value: Any, path: str) -> Any:
    """Encode one field value as JSON-ready data; `path` names the field in errors."""
    if isinstance(value, np.ndarray | np.generic):  # before float: np.float64 is a float
        return _encode_array(value, path)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {_TAG: "float", "value": repr(value)}
    if isinstance(value, list):
        return [_encode(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {_TAG: "tuple", "items": [_encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return _encode_dict(value, path)
    if isinstance(value, Result):
        return {_TAG: "result", **_encode_result(value, f"{path}.")}
    if isinstance(value, torch.Tensor):
        return _encode_tensor(value, path)
    if isinstance(value, pd.DataFrame):
        buffer = io.BytesIO()
        frame_to_parquet(value, buffer)
        return {_TAG: "dataframe", "parquet": _b64(buffer.getvalue())}
    raise ValueError(f"field {path!r}: cannot encode a value of type {type(value).__qualname__}")


def _encode_dict(value: dict[Any, Any], path: str) -> dict[str, Any]:
    for key in value:
        if not isinstance(key, str):
            raise ValueError(f"field {path!r}: dict keys must be str, got {key!r}")
    items = {k: _encode(v, f"{path}[{k!r}]") for k, v in value.items()}
    return {_TAG: "dict", "items": items} if _TAG in items else items


def _encode_array(value: np.ndarray | np.generic, path: str) -> dict[str, Any]:
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise ValueError(f"field {path!r}: object-dtype numpy arrays cannot be encoded")
    return {
        _TAG: "ndarray",
        "dtype": np.lib.format.dtype_to_descr(array.dtype),
        "shape": list(array.shape),
        "scalar": isinstance(value, np.generic),
        "data": _b64(np.ascontiguousarray(array).tobytes()),
    }


def _encode_tensor(value: torch.Tensor, path: str) -> dict[str, Any]:
    if value.layout != torch.strided or value.is_quantized:
        raise ValueError(f"field {path!r}: only dense (strided) tensors can be encoded")
    flat = value.detach().cpu().contiguous().reshape(-1)  # [numel]
    raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
    return {
        _TAG: "tensor",
        "dtype": str(value.dtype).removeprefix("torch."),
        "shape": list(value.shape),
        "data": _b64(raw),
    }


def _decode_result(body: dict[str, Any]) -> Result:
    name = body.get("type")
    cls = Result._registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown result type {name!r} (is the module defining it imported?)")
    fields = {k: _decode(v) for k, v in body.get("fields", {}).items()}
    return cls(**cls._stored_fields(fields))


def _decode(value: Any) -> Any:
    """Invert `_encode`."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_TAG)
    if tag is None:
        return {k: _decode(v) for k, v in value.items()}
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown encoded value tag {tag!r}")
    return decoder(value)


def _decode_array(value: dict[str, Any]) -> np.ndarray | np.generic:
    dtype = np.lib.format.descr_to_dtype(_as_descr(value["dtype"]))
    raw = base64.b64decode(value["data"])
    array = np.frombuffer(raw, dtype=dtype).reshape(value["shape"]).copy()
    return array[()] if value.get("scalar") else array


def _as_descr(descr: Any) -> Any:
    """JSON turns the tuples of a structured dtype descr into lists; turn them back."""
    if isinstance(descr, list):
        return [tuple(_as_descr(part) for part in item) for item in descr]
    return descr


def _decode_tensor(value: dict[str, Any]) -> torch.Tensor:
    dtype = getattr(torch, value["dtype"], None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown torch dtype {value['dtype']!r}")
    raw = base64.b64decode(value["data"])
    if not raw:
        return torch.empty(value["shape"], dtype=dtype)
    flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8)  # [numel * itemsize]
    return flat.view(dtype).reshape(value["shape"])


_DECODERS: dict[str, Any] = {
    "float": lambda v: _FLOATS[v["value"]],
    "tuple": lambda v: tuple(_decode(x) for x in v["items"]),
    "dict": lambda v: {k: _decode(x) for k, x in v["items"].items()},
    "result": _decode_result,
    "ndarray": _decode_array,
    "tensor": _decode_tensor,
    "dataframe": lambda v: frame_from_parquet(io.BytesIO(base64.b64decode(v["parquet"]))),
}
