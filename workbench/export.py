"""Figure and table export: PNG/SVG/PDF/HTML for plotly figures, CSV/Parquet for tables.

`export(fig_or_frame, path, *, width=None, height=None)` writes one file, choosing the format
from the suffix. `figure_bytes` / `table_bytes` return the bytes instead (the dashboard sends
them through `dcc.Download`). `safe_filename` / `safe_export_path` turn untrusted names (from a
browser request or the command line) into names that cannot leave the export folder.

Static images go through ONE long-lived kaleido server (a headless chromium, Debian's
/usr/bin/chromium, found by kaleido itself) started on first use with MathJax off, so no
CDN is contacted and every export after the first costs about 0.2 s instead of 2 s.

Caveats:
- kaleido ignores the figure's own size; `width`/`height` default to the figure's layout size,
  else 900 x 600 pixels. Either side above `MAX_SIDE` (4000 px) is refused (`ValueError`):
  a huge page holds the one kaleido server for seconds and can come back broken.
- Nothing outside the figure is fetched: a figure that points at an image, map style or
  GeoJSON by address (`layout.images[].source`, an image trace's `source`, map layers and
  styles, a `geojson` string; templates included) is refused with a `ValueError` naming the
  field, unless the reference is an inline `data:` URI. `http://127.0.0.1:...` or
  `file:///...` would otherwise be fetched or read by the exporting process.
- The kaleido server is a thread of the process that started it. A forked child (a Dash
  background callback) cannot use its parent's server, so it renders with a one-shot kaleido
  (slow: a fresh chromium per call).
- HTML embeds plotly.js (about 4.6 MB) so the file opens offline.
"""

from __future__ import annotations

import io
import os
import re
import threading
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

FIGURE_FORMATS = ("png", "svg", "pdf", "html")
TABLE_FORMATS = ("csv", "parquet")
MIME_TYPES = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "html": "text/html",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
DEFAULT_SIZE = (900, 600)
MAX_SIDE = 4000
_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*:")
MAX_NAME_LENGTH = 120

_server_lock = threading.Lock()
_server_pid: int | None = None


def start_server() -> None:
    """Start the process-wide kaleido server (MathJax off) unless it already runs here."""
    global _server_pid
    import kaleido

    with _server_lock:
        if _server_pid == os.getpid():
            return
        if _server_pid is None:
            kaleido.start_sync_server(mathjax=False, silence_warnings=True)
            _server_pid = os.getpid()


def _render_static(fig: go.Figure, fmt: str, width: int, height: int) -> bytes:
    """`fig` drawn by kaleido as `fmt` bytes, without the pattern figures' `meta["labels"]`
    (1,000 hover labels at 1,000 tokens cost chromium ~0.08 s per export and draw nothing)."""
    import kaleido
    from kaleido import _sync_server

    start_server()
    opts = {"format": fmt, "width": width, "height": height}
    spec = fig.to_dict()  # kaleido would copy it too
    meta = spec.get("layout", {}).get("meta")
    if isinstance(meta, dict) and "labels" in meta:  # the pattern's hover labels: not drawn
        spec["layout"]["meta"] = {k: v for k, v in meta.items() if k != "labels"}
    fig = spec
    if _server_pid != os.getpid():  # forked child: the parent's server thread is not here
        return _sync_server.oneshot_async_run(
            kaleido.calc_fig, args=(fig,), kwargs={"opts": opts, "kopts": {"mathjax": False}}
        )
    with _server_lock:  # the server's request/answer queues serve one caller at a time
        return kaleido.calc_fig_sync(fig, opts=opts)


def _size(fig: go.Figure, width: int | None, height: int | None) -> tuple[int, int]:
    for name, value in (("width", width), ("height", height)):
        if value is not None and not (
            isinstance(value, int) and not isinstance(value, bool) and 10 <= value <= MAX_SIDE
        ):
            raise ValueError(f"{name}: {value!r} is not a size in pixels (10-{MAX_SIDE})")
    size = (
        width or fig.layout.width or DEFAULT_SIZE[0],
        height or fig.layout.height or DEFAULT_SIZE[1],
    )
    for name, value in zip(("width", "height"), size, strict=True):
        if not 10 <= value <= MAX_SIDE:
            raise ValueError(f"layout.{name}: {value!r} is not a size in pixels (10-{MAX_SIDE})")
    return int(size[0]), int(size[1])


def _points_outside(key: str, value: Any) -> bool:
    """True when a `source` / `geojson` / `style` value names something outside the figure."""
    if isinstance(value, list | tuple):
        return any(_points_outside(key, v) for v in value)
    if not isinstance(value, str):
        return False
    if key == "source":
        return not value.strip().lower().startswith("data:")
    if key == "geojson":
        return True
    return bool(_SCHEME.match(value)) or "/" in value  # a map style by address


def external_references(spec: Any, where: str = "") -> list[str]:
    """Where a figure's JSON (`fig.to_plotly_json()`) points at something outside itself.

    Checked fields: every `source` (layout images, image traces, map layers) that is not a
    `data:` URI, every `geojson` given as an address, and a map `style` given as an address.
    Returns paths such as `layout.images[0].source`.
    """
    found: list[str] = []
    if isinstance(spec, dict):
        for key, value in spec.items():
            path = f"{where}.{key}" if where else str(key)
            if key in ("source", "geojson", "style") and _points_outside(key, value):
                found.append(path)
            elif isinstance(value, dict | list | tuple):
                found.extend(external_references(value, path))
    elif isinstance(spec, list | tuple):
        for i, value in enumerate(spec):
            found.extend(external_references(value, f"{where}[{i}]"))
    return found


def _check_self_contained(fig: go.Figure) -> None:
    found = external_references(fig.to_plotly_json())
    if found:
        raise ValueError(
            f"{found[0]}: the figure points outside itself; only inline data: images are "
            "exported, never an address or a file"
        )


def figure_bytes(
    fig: go.Figure, fmt: str, *, width: int | None = None, height: int | None = None
) -> bytes:
    """The figure encoded as `fmt` (png, svg, pdf or html)."""
    import plotly.graph_objects as go

    fmt = _check_format(fmt, FIGURE_FORMATS, "figure")
    if isinstance(fig, dict):
        fig = go.Figure(fig)
    if not isinstance(fig, go.Figure):
        raise ValueError(f"fig: expected a plotly Figure, got {type(fig).__name__}")
    w, h = _size(fig, width, height)
    _check_self_contained(fig)
    if fmt == "html":
        sized = go.Figure(fig).update_layout(width=w, height=h) if width or height else fig
        return sized.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
    return _render_static(fig, fmt, w, h)


def table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """The table encoded as `fmt` (csv or parquet)."""
    import pandas as pd

    fmt = _check_format(fmt, TABLE_FORMATS, "table")
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"table: expected a pandas DataFrame, got {type(df).__name__}")
    if fmt == "csv":
        return df.to_csv(index=False).encode("utf-8")
    buffer = io.BytesIO()
    df.to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def export(
    obj: go.Figure | pd.DataFrame,
    path: str | os.PathLike,
    *,
    width: int | None = None,
    height: int | None = None,
) -> Path:
    """Write a figure (.png/.svg/.pdf/.html) or a table (.csv/.parquet) to `path`.

    The format comes from the suffix. Returns the path written. Raises `ValueError` for an
    unknown suffix or an object that does not fit it (a table as .png).
    """
    import pandas as pd

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if isinstance(obj, pd.DataFrame):
        if width is not None or height is not None:
            raise ValueError("width/height: only figures have a size")
        data = table_bytes(obj, _check_format(fmt, TABLE_FORMATS, "path"))
    else:
        data = figure_bytes(
            obj, _check_format(fmt, FIGURE_FORMATS, "path"), width=width, height=height
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def _check_format(fmt: str, allowed: tuple[str, ...], what: str) -> str:
    fmt = (fmt or "").lower().lstrip(".")
    if fmt not in allowed:
        raise ValueError(f"{what}: format {fmt or '(none)'!r} is not one of {', '.join(allowed)}")
    return fmt


def safe_filename(name: str, fmt: str | None = None, *, default: str = "export") -> str:
    """A file name made only of `[A-Za-z0-9_.-]`, no leading dot, at most 120 characters.

    Directory parts (`../`, `/`, `\\`) are dropped, other characters become `_`; with `fmt`
    the name ends in `.fmt` (replacing any other suffix). An empty result becomes `default`.
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._-")
    base = re.sub(r"\.{2,}", ".", base)
    if fmt is not None:
        stem, dot, suffix = base.rpartition(".")
        if dot and suffix.lower() in FIGURE_FORMATS + TABLE_FORMATS:
            base = stem.rstrip("._-")
        base = base or default
        base = f"{base[: MAX_NAME_LENGTH - len(fmt) - 1]}.{fmt.lower()}"
    return base[:MAX_NAME_LENGTH] or default


def safe_export_path(folder: str | os.PathLike, name: str, fmt: str | None = None) -> Path:
    """`folder / safe_filename(name, fmt)`, checked to lie inside `folder` (created if needed)."""
    root = Path(folder).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    target = (root / safe_filename(name, fmt)).resolve()
    if target.parent != root:
        raise ValueError(f"name: {name!r} would leave the export folder {root}")
    return target


def figure_from_json(data: str | bytes | dict[str, Any]) -> go.Figure:
    """A plotly figure from its JSON (a string, bytes or the dict `dcc.Graph` holds)."""
    import plotly.graph_objects as go
    import plotly.io as pio

    if isinstance(data, dict):
        return go.Figure(data)
    return pio.from_json(data.decode() if isinstance(data, bytes) else data)


__all__ = [
    "FIGURE_FORMATS",
    "MAX_SIDE",
    "MIME_TYPES",
    "TABLE_FORMATS",
    "export",
    "external_references",
    "figure_bytes",
    "figure_from_json",
    "safe_export_path",
    "safe_filename",
    "start_server",
    "table_bytes",
]
