"""Models page ("/models"): the bundled zoo and every loaded model, with dimensions and card metrics.

Thin: the rows come from `Model.describe()` (through the server-side cache in
`workbench.ui.state`) and from the zoo registry; this module only lays them out. Zoo models
without a checkpoint are listed as "not trained". Ids are prefixed `models-`.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import html

from workbench.ui import selection, state
from workbench.zoo import ZOO, scalar_metrics

PAGE = {"path": "/models", "name": "Models", "title": "Models · Attention Workbench", "order": 80}

COLUMNS = ["Model", "Kind", "Layers", "Heads", "d_head", "d_model", "n_ctx", "Params", "Metrics"]
DIM_KEYS = ["n_layers", "n_heads", "d_head", "d_model", "n_ctx", "n_params"]


def model_rows() -> list[dict[str, Any]]:
    """One dict per row: zoo models first (in zoo order), then other loaded models.

    Each row has `name`, `description`, `status` ("loaded", "available" or "not trained") and,
    when loaded, the `Model.describe()` fields.
    """
    loaded = {m.name: m for m in state.loaded_models()}
    rows = []
    for name, entry in ZOO.items():
        row: dict[str, Any] = {"name": name, "description": entry.description, "kind": entry.kind}
        if name in loaded:
            row.update(loaded.pop(name).describe(), status="loaded")
        else:
            row["status"] = "available" if entry.is_available() else "not trained"
        rows.append(row)
    for model in loaded.values():
        info = model.describe()
        kind = "decoder" if info["is_causal"] else "encoder"
        rows.append({"description": info["source"], "kind": kind, **info, "status": "loaded"})
    return rows


def format_params(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def _metrics_cell(row: dict[str, Any]) -> Any:
    if row["status"] == "not trained":
        return dmc.Stack(
            [
                dmc.Text("not trained", size="sm", c="dimmed"),
                dmc.Code(f"python -m workbench.zoo.train {row['name']}"),
            ],
            gap=4,
            align="flex-start",
        )
    if row["status"] == "available":
        return dmc.Text("available, not loaded", size="sm", c="dimmed")
    metrics = scalar_metrics(row.get("metrics") or {})
    if not metrics:
        return dmc.Text("no card metrics", size="sm", c="dimmed")
    return dmc.Stack(
        [
            dmc.Text(
                [html.Span(f"{k} ", style={"opacity": 0.6}), _fmt(v)], size="xs", ff="monospace"
            )
            for k, v in metrics.items()
        ],
        gap=0,
    )


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _row(row: dict[str, Any]) -> Any:
    name = row["name"]
    status_color = {"loaded": "green", "available": "blue", "not trained": "gray"}[row["status"]]
    model_cell = dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Text(name, fw=600, ff="monospace"),
                    dmc.Badge(row["status"], color=status_color, variant="light", size="sm"),
                ],
                gap="xs",
            ),
            dmc.Text(row["description"], size="xs", c="dimmed", maw=360),
        ],
        gap=2,
    )
    causal = row["is_causal"] if "is_causal" in row else row["kind"] == "decoder"
    kind = dmc.Stack(
        [
            dmc.Text(row["kind"], size="sm"),
            dmc.Text("causal" if causal else "bidirectional", size="xs", c="dimmed"),
        ],
        gap=0,
    )
    if "n_layers" in row:
        heads = str(row["n_heads"])
        if row["n_key_value_heads"] != row["n_heads"]:
            heads += f" ({row['n_key_value_heads']} kv)"
        dims = [
            str(row["n_layers"]),
            heads,
            str(row["d_head"]),
            str(row["d_model"]),
            str(row["n_ctx"]),
            format_params(row["n_params"]),
        ]
    else:
        dims = ["—"] * len(DIM_KEYS)
    cells = [dmc.TableTd(model_cell), dmc.TableTd(kind)]
    cells += [dmc.TableTd(v, id=f"models-{name}-{k}") for k, v in zip(DIM_KEYS, dims, strict=True)]
    cells.append(dmc.TableTd(_metrics_cell(row), id=f"models-{name}-metrics"))
    return dmc.TableTr(cells, id=f"models-row-{name}")


def layout(**query: str) -> Any:
    """The page, rebuilt on every visit from the server-side model cache."""
    rows = model_rows()
    table = dmc.Table(
        [
            dmc.TableThead(dmc.TableTr([dmc.TableTh(c) for c in COLUMNS])),
            dmc.TableTbody([_row(r) for r in rows]),
        ],
        id="models-table",
        striped=True,
        highlightOnHover=True,
        withTableBorder=True,
        verticalSpacing="sm",
    )
    return dmc.Stack(
        [
            selection.query_store("models", query),
            dmc.Title("Models", order=2),
            dmc.Text(
                "The bundled zoo and every model loaded in this server. Metrics come from each "
                "model's card (held-out task measurements).",
                c="dimmed",
                size="sm",
            ),
            dmc.TableScrollContainer(table, minWidth=900),
        ],
        gap="md",
    )


def register_callbacks(app: Any) -> None:
    selection.register_writer(app, "models", {})
