"""A testing and benchmark client: call one dashboard callback over HTTP without a browser.

Not used by the dashboard itself: the tests (tests/hostile, tests/app) and
benchmarks/dashboard.py drive callbacks through Flask's test client with it.

`post_callback(app, client, outputs, inputs, state)` builds the JSON body the Dash renderer
sends to `/_dash-update-component` and returns the decoded response (`{"response": {id:
{prop: value}}}`). Outputs registered with `allow_duplicate` carry a hash suffix in Dash's
callback map; it is looked up from `app.callback_map`. Ids/props are given as
`"component-id.prop"` strings, values as `{"component-id.prop": value}`.

Caveat: the callback must not be a background callback (those answer with a job id first).
"""

from __future__ import annotations

import json
from typing import Any


def _split(name: str) -> dict[str, str]:
    component, prop = name.rsplit(".", 1)
    return {"id": component, "property": prop}


def _callback_key(app: Any, outputs: list[str]) -> str:
    """The callback-map key whose outputs are `outputs` (ignoring `@hash` suffixes)."""
    for key in app.callback_map:
        parts = key.strip(".").split("...") if key.startswith("..") else [key]
        if [p.split("@")[0] for p in parts] == outputs:
            return key
    raise KeyError(f"no callback with outputs {outputs}")


def post_callback(
    app: Any,
    client: Any,
    outputs: list[str],
    inputs: dict[str, Any],
    state: dict[str, Any] | None = None,
    *,
    changed: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST one callback invocation (with extra `headers`, e.g. a `Host`); raises
    `RuntimeError` with the status and body on a non-200 answer."""
    output = _callback_key(app, outputs)
    parts = output.strip(".").split("...") if output.startswith("..") else [output]
    specs = [_split(p) for p in parts]
    outputs_field: Any = specs if output.startswith("..") else specs[0]
    body = {
        "output": output,
        "outputs": outputs_field,
        "inputs": [{**_split(k), "value": v} for k, v in inputs.items()],
        "state": [{**_split(k), "value": v} for k, v in (state or {}).items()],
        "changedPropIds": changed if changed is not None else list(inputs)[:1],
    }
    answer = client.post("/_dash-update-component", json=body, headers=headers or {})
    if answer.status_code != 200:
        raise RuntimeError(f"callback {output}: HTTP {answer.status_code}: {answer.data[:300]!r}")
    return json.loads(answer.data)


__all__ = ["post_callback"]
