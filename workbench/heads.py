"""`Head`: one attention head, written one way everywhere (`L{layer}H{head}`, e.g. `L1H2`).

`Head` is a `NamedTuple` `(layer, head)`, so it unpacks, sorts, hashes and compares like the
`(layer, head)` pairs the library used before, and serialises to JSON as `[layer, head]`.

- `str(Head(1, 2))` is `"L1H2"`: the notation of the API, the CLI, figures and the dashboard.
- `Head.parse(value)` reads what people and older files write: `"L1H2"` (any case, spaces
  allowed), `"1.2"` (the CLI's former `LAYER.HEAD`), `"a1.2"` (the circuit graph's former node name),
  a `(layer, head)` pair, a `{"layer": .., "head": ..}` mapping or a `Head`. Anything else is a
  `ValueError` naming the problem; bools and negative numbers are refused.
- `parse_heads("L0H1, L1H2")` reads a comma- or space-separated list (or any iterable).
- `head.check(n_layers, n_heads)` (also `Model.check_head`) refuses heads the model does not have.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

_TEXT = re.compile(r"(?:L\s*(\d+)\s*H\s*(\d+)|A?(\d+)\.(\d+))", re.IGNORECASE)


def _index(value: Any, what: str) -> int:
    """`value` as a non-negative whole number (`ValueError` naming `what` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int):
        index = getattr(value, "__index__", None)  # numpy / torch integers
        is_bool = "bool" in str(getattr(value, "dtype", ""))  # np.True_, torch.tensor(True)
        try:
            if index is None or is_bool or isinstance(value, bool | float):
                raise TypeError
            value = index()
        except (TypeError, ValueError, RuntimeError):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
            raise ValueError(f"{what}: expected a whole number, got {shown}") from None
    if value < 0:
        raise ValueError(f"{what}: expected a non-negative whole number, got {value}")
    return int(value)


class Head(NamedTuple):
    """One attention head: `layer` and `head` index (both from 0)."""

    layer: int
    head: int

    def __str__(self) -> str:
        return f"L{self.layer}H{self.head}"

    @classmethod
    def of(cls, layer: Any, head: Any) -> Head:
        """A head from two whole numbers (`ValueError` for bools, floats, negatives)."""
        return cls(_index(layer, "layer"), _index(head, "head"))

    @classmethod
    def parse(cls, value: Any) -> Head:
        """A head from `"L1H2"`, `"1.2"`, `"a1.2"`, `(1, 2)`, `{"layer": 1, "head": 2}` or a
        `Head` (see the module docstring); `ValueError` naming the problem otherwise."""
        if isinstance(value, Head):
            return value
        if isinstance(value, str):
            found = _TEXT.fullmatch(value.strip())
            if found is None:
                shown = value if len(value) <= 40 else value[:40] + "..."
                raise ValueError(f"head: {shown!r} is not a head; write it as L<layer>H<head>")
            layer, head = (int(g) for g in found.groups() if g is not None)
            return cls(layer, head)
        if isinstance(value, Mapping):
            if set(value) != {"layer", "head"}:
                raise ValueError(f"head: expected keys layer and head, got {sorted(value)}")
            return cls.of(value["layer"], value["head"])
        if isinstance(value, list | tuple) and len(value) == 2:
            return cls.of(*value)
        raise ValueError(f"head: {value!r} is not a head; write it as L<layer>H<head>")

    def check(self, n_layers: int, n_heads: int, model: str = "") -> Head:
        """This head if the model (named `model`, if given) has it (`n_layers` layers of
        `n_heads` heads), else `ValueError` saying which index is out of range, e.g.
        `layer: 2 is out of range for tiny-ioi (2 layers: 0-1)`."""
        where = f" for {model}" if model else ""
        for name, value, limit in (("layer", self.layer, n_layers), ("head", self.head, n_heads)):
            if not 0 <= value < limit:
                raise ValueError(
                    f"{name}: {value} is out of range{where} ({limit} {name}s: 0-{limit - 1})"
                )
        return self


def parse_heads(spec: str | Iterable[Any]) -> tuple[Head, ...]:
    """Heads from `"L0H1, L1H2"` (comma- or space-separated, any notation `Head.parse` reads)
    or an iterable of heads; `ValueError` for an empty list or any head it cannot read."""
    if isinstance(spec, str):
        items: Iterable[Any] = [part for part in re.split(r"[,\s]+", spec) if part]
    elif isinstance(spec, Iterable):
        items = spec
    else:
        raise ValueError(f"heads: expected text like 'L0H1, L1H2' or a list, got {spec!r}")
    heads = tuple(Head.parse(item) for item in items)
    if not heads:
        raise ValueError("heads: no heads given; name at least one, e.g. L1H2")
    return heads


__all__ = ["Head", "parse_heads"]
