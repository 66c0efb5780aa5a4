"""Model & prompt page ("/"): choose a model (zoo or local folder) and a prompt (typed or
taken from a task); shows the tokens the model sees, with whitespace visible and indices.

Thin: loading is `state.open_model` (the server-side cache; folders only inside the
server's `--models-dir` folders, safetensors only, never running remote code unless the server
was started with --trust-remote-code), tokens come from
`Model.to_tokens` / `to_str_tokens`, task prompts from `workbench.tasks.make_task`. Every
bad input (missing folder, empty prompt, a prompt longer than the context, an unknown task,
anything that is not text where text belongs) is one red alert.
Writes model, prompt and task into the shared selection. Ids are prefixed `prompt-`.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, html, no_update

from analysis.statistics.attention_pattern import visible_token
from workbench.ui import input_checks as check
from workbench.ui import selection, state
from workbench.ui.components import error_alert, page_header
from workbench.ui.shared import TASKS
from workbench.zoo import ZOO

PAGE = {"path": "/", "name": "Model & prompt", "title": "Attention Workbench", "order": 0}
DEFAULT_PROMPT = selection.DEFAULT_PROMPT


def model_options(extra: str | None = None) -> list[dict[str, str]]:
    """Select options: trained zoo models, then every other loaded model (local folders)."""
    names = [n for n, entry in ZOO.items() if entry.is_available()]
    names += [m.name for m in state.loaded_models() if m.name not in names]
    if extra and extra not in names:
        names.append(extra)
    return [{"value": n, "label": n} for n in names]


def token_chips(tokens: list[str]) -> Any:
    """One badge per token: `index` then the token with whitespace drawn."""
    return dmc.Group(
        [
            dmc.Badge(
                [html.Span(f"{i} ", style={"opacity": 0.55}), visible_token(t)],
                variant="light",
                radius="sm",
                tt="none",
                ff="monospace",
                id=f"prompt-token-{i}",
            )
            for i, t in enumerate(tokens)
        ],
        gap=4,
    )


def layout(**query: str) -> Any:
    selected = selection.parse_query(query)
    model = selected.get("model", selection.DEFAULT_MODEL)
    model_picker = dmc.Stack(
        [
            dmc.Select(
                id="prompt-model",
                label="Model",
                data=model_options(model),
                value=model,
                searchable=True,
                allowDeselect=False,
                w=320,
            ),
            dmc.Group(
                [
                    dmc.TextInput(
                        id="prompt-path",
                        label="…or a local checkpoint folder",
                        placeholder="/path/to/hf-checkpoint",
                        w=320,
                    ),
                    dmc.Button("Load", id="prompt-load", variant="light"),
                ],
                align="flex-end",
                gap="xs",
            ),
            html.Div(id="prompt-load-status"),
        ],
        gap="xs",
    )
    prompt_picker = dmc.Stack(
        [
            dmc.Textarea(
                id="prompt-text",
                label="Prompt",
                value=selected.get("prompt", DEFAULT_PROMPT),
                autosize=True,
                minRows=3,
                debounce=400,
            ),
            dmc.Group(
                [
                    dmc.Select(
                        id="prompt-task",
                        label="…or a prompt from a task",
                        data=TASKS,
                        value=selected.get("task"),
                        clearable=True,
                        w=200,
                    ),
                    dmc.Button("Use task prompt", id="prompt-use-task", variant="light"),
                ],
                align="flex-end",
                gap="xs",
            ),
        ],
        gap="xs",
    )
    return dmc.Stack(
        [
            selection.query_store("prompt", query),
            page_header(
                "Model & prompt",
                "Pick a model and a prompt; every other page analyses this selection "
                "(it is kept in the URL, so the link shares the view).",
            ),
            dmc.SimpleGrid([model_picker, prompt_picker], cols=2),
            dmc.Paper(
                [
                    dmc.Text("Tokens the model sees", fw=600),
                    html.Div(id="prompt-summary"),
                    html.Div(id="prompt-tokens"),
                ],
                withBorder=True,
                p="sm",
                radius="md",
            ),
        ],
        gap="md",
    )


def register_callbacks(app: Any) -> None:
    selection.register_writer(
        app,
        "prompt",
        {
            "model": ("prompt-model", "value"),
            "prompt": ("prompt-text", "value"),
            "task": ("prompt-task", "value"),
        },
    )

    @app.callback(
        Output("prompt-model", "data"),
        Output("prompt-model", "value"),
        Output("prompt-load-status", "children"),
        Input("prompt-load", "n_clicks"),
        State("prompt-path", "value"),
        prevent_initial_call=True,
    )
    def load_local(_clicks: int, path: Any) -> Any:
        if not isinstance(path, str) or not path.strip() or len(path) > 4096:
            return no_update, no_update, error_alert("model: enter a checkpoint folder path")
        try:
            model = state.open_model(path.strip())
        except Exception as err:  # noqa: BLE001 - shown to the user, server keeps serving
            return no_update, no_update, error_alert(err, title="Cannot load that model")
        return model_options(model.name), model.name, dmc.Text(f"loaded {model.name}", size="sm")

    @app.callback(
        Output("prompt-text", "value"),
        Output("prompt-load-status", "children", allow_duplicate=True),
        Input("prompt-use-task", "n_clicks"),
        State("prompt-model", "value"),
        State("prompt-task", "value"),
        prevent_initial_call=True,
    )
    def use_task_prompt(_clicks: int, model_name: Any, task: Any) -> Any:
        if task is None or task == "":
            return no_update, no_update
        try:
            from workbench.tasks import make_task

            task = check.choice(task, "task", TASKS)
            text = make_task(task, state.open_model(model_name), n=1).clean_text[0]
        except Exception as err:  # noqa: BLE001 - shown to the user
            return no_update, error_alert(err, title="Cannot use that task")
        return text, no_update

    @app.callback(
        Output("prompt-summary", "children"),
        Output("prompt-tokens", "children"),
        Input("prompt-model", "value"),
        Input("prompt-text", "value"),
    )
    def show_tokens(model_name: Any, prompt: Any) -> Any:
        try:
            prompt = check.text(
                "" if prompt is None else prompt, "prompt", selection.MAX_PROMPT_CHARS
            )
            model = state.open_model(model_name)
            tokens = model.to_str_tokens(model.to_tokens(prompt))
        except Exception as err:  # noqa: BLE001
            return error_alert(err, title="Cannot use this prompt", id="prompt-error"), None
        kind = "decoder (causal)" if model.is_causal else "encoder (bidirectional)"
        summary = dmc.Text(
            f"{model.name}: {kind}, {model.n_layers} layers × {model.n_heads} heads, "
            f"context {model.n_ctx} · {len(tokens)} tokens",
            size="sm",
            c="dimmed",
            id="prompt-count",
        )
        return summary, token_chips(tokens)
