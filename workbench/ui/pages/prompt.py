"""Model & prompt page ("/"): choose a model (zoo or local folder) and a prompt (typed or
taken from a task); shows the tokens the model sees, with whitespace visible and indices.

Thin: loading is `state.open_model` (the server-side cache; folders only inside the
server's `--models-dir` folders, safetensors only, never running remote code unless the server
was started with --trust-remote-code), tokens come from
`Model.to_tokens` / `to_str_tokens`, task prompts from `workbench.tasks.make_task`. Every
bad input (missing folder, empty prompt, a prompt longer than the context, an unknown task,
anything that is not text where text belongs) is one red alert.
Writes model, prompt and task into the shared selection. Ids are prefixed `prompt-`.

Prediction panel (decoders; `analysis.prediction.predict`): the top-k next tokens with
probabilities, a logit difference (IO − S when the task is ioi and the prompt is an IOI
sentence, else top-1 − top-2) and its per-head direct logit attribution; with another task
chosen, that task's own metric over its first prompts. Encoders get a note instead (MiniLM's
masked-LM head is untrained). Shown under a loading spinner; any failure is a red alert.

Logit lens panel (decoders; `analysis.logit_lens.logit_lens`), under the prediction: at one
position (default the last; the input is bounded by the prompt's length) every layer's
residual stream through the final norm and unembedding: the target's probability per layer
(the IO name with task ioi on an IOI sentence, else the model's final top-1 there) and the top
tokens per layer. A bad position is the panel's red alert (`prompt-lens-alert`).
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, html, no_update

from analysis.statistics.attention_pattern import visible_token
from workbench.ui import input_checks as check
from workbench.ui import selection, state
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    info_alert,
    keep_figure,
    page_header,
    register_figure_export,
)
from workbench.ui.shared import TASKS
from workbench.zoo import ZOO

PAGE = {"path": "/", "name": "Model & prompt", "title": "Attention Workbench", "order": 0}
DEFAULT_PROMPT = selection.DEFAULT_PROMPT
TOP_K = 10
PREDICTION_GRAPHS = ("prompt-topk", "prompt-dla")
LENS_GRAPHS = ("prompt-lens-target", "prompt-lens-top")
LENS_K = 5


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
            dmc.Paper(
                [
                    dmc.Text("What the model predicts next", fw=600),
                    html.Div(id="prompt-prediction"),
                    dmc.SimpleGrid(
                        [
                            figure_card(
                                "prompt-topk", "Top next tokens", figure=empty_figure("computing…")
                            ),
                            figure_card(
                                "prompt-dla",
                                "Direct logit attribution per head",
                                figure=empty_figure("computing…"),
                            ),
                        ],
                        cols=2,
                    ),
                ],
                withBorder=True,
                p="sm",
                radius="md",
            ),
            lens_panel(),
        ],
        gap="md",
    )


def lens_panel() -> Any:
    """Logit lens: a position input (blank = last token) and its two figures."""
    return dmc.Paper(
        [
            dmc.Text("Logit lens: what each layer would predict", fw=600),
            dmc.NumberInput(
                id="prompt-lens-position",
                label="Position (token index; blank = last)",
                value=None,
                min=0,
                allowDecimal=False,
                w=260,
            ),
            html.Div(id="prompt-lens"),
            dmc.SimpleGrid(
                [
                    figure_card(
                        "prompt-lens-target",
                        "Target probability per layer",
                        figure=empty_figure("computing…"),
                    ),
                    figure_card(
                        "prompt-lens-top", "Top tokens per layer", figure=empty_figure("computing…")
                    ),
                ],
                cols=2,
            ),
        ],
        withBorder=True,
        p="sm",
        radius="md",
    )


def lens_summary(lens: Any) -> Any:
    """One line: where the lens looks, its target and the first layer ranking it top."""
    first = [i for i, rank in enumerate(lens.target_ranks) if rank == 0]
    where = f"layer {first[0]} ({lens.streams[first[0]]})" if first else "no layer"
    return dmc.Text(
        [
            f"position {lens.position} ",
            dmc.Code(visible_token(lens.token)),
            " · target ",
            dmc.Code(visible_token(lens.target), id="prompt-lens-target-token"),
            f" ({lens.target_source}) · final probability {lens.target_probs[-1]:.3f} · "
            f"first ranked top-1 at {where}",
        ],
        size="sm",
        id="prompt-lens-summary",
    )


def prediction_summary(pred: Any, note: Any) -> Any:
    """One line: the top token, the logit difference (and what it compares), a task note."""
    top = visible_token(pred.top_tokens[0])
    target, baseline = visible_token(pred.target), visible_token(pred.baseline)
    what = "IOI: indirect object − subject" if pred.direction.startswith("ioi") else "top-1 − top-2"
    parts = [
        dmc.Text(
            [
                "next token ",
                dmc.Code(top, id="prompt-top-token"),
                f" ({pred.top_probs[0]:.1%}) · logit difference ",
                dmc.Code(f"{target} − {baseline} = {pred.logit_diff:+.3f}", id="prompt-logit-diff"),
                f" ({what}; per-head DLA below, rest {pred.rest:+.3f})",
            ],
            size="sm",
        )
    ]
    if note is not None:
        parts.append(note)
    return dmc.Stack(parts, gap=4)


def _task_note(model: Any, task: Any) -> Any:
    """The chosen task's own metric (not ioi, whose logit difference is in the summary)."""
    if task in (None, "", "ioi"):
        return None
    from analysis.prediction import task_metric

    try:
        task = check.choice(task, "task", TASKS)
        found = task_metric(model, task)
    except Exception as err:  # noqa: BLE001 - shown to the user, the prediction stays
        return error_alert(err, title="No task metric", id="prompt-task-alert")
    return dmc.Text(
        f"task {found['task']}: {found['metric']} = {found['mean']:+.3f} "
        f"(mean over its first {found['n']} prompts)",
        size="sm",
        id="prompt-task-metric",
    )


def register_callbacks(app: Any) -> None:
    for graph in PREDICTION_GRAPHS:
        register_figure_export(app, graph)

    @app.callback(
        Output("prompt-prediction", "children"),
        Output("prompt-topk", "figure"),
        Output("prompt-dla", "figure"),
        Input("prompt-model", "value"),
        Input("prompt-text", "value"),
        Input("prompt-task", "value"),
        State("session-id", "data"),
    )
    def show_prediction(model_name: Any, prompt: Any, task: Any, session: Any) -> Any:
        from analysis.prediction import predict

        blank = empty_figure("no prediction")
        try:
            prompt = check.text(
                "" if prompt is None else prompt, "prompt", selection.MAX_PROMPT_CHARS
            )
            model = state.open_model(model_name)
            if not model.is_causal:
                for graph in PREDICTION_GRAPHS:
                    keep_figure(session, graph, None)
                note = info_alert(
                    f"{model.name} is an encoder: its masked-LM head is untrained in this "
                    "checkpoint, so it has no next-token prediction to show.",
                    title="No prediction",
                )
                return note, blank, blank
            with state.model_lock(model.name):
                pred = predict(model, prompt, k=TOP_K, task="ioi" if task == "ioi" else None)
                note = _task_note(model, task)
        except Exception as err:  # noqa: BLE001 - shown to the user
            for graph in PREDICTION_GRAPHS:
                keep_figure(session, graph, None)
            alert = error_alert(err, title="No prediction", id="prompt-prediction-alert")
            return alert, blank, blank
        topk = keep_figure(session, "prompt-topk", pred.plot("top_k"), label=model.name)
        dla = keep_figure(session, "prompt-dla", pred.plot("dla"), label=model.name)
        return prediction_summary(pred, note), topk, dla

    for graph in LENS_GRAPHS:
        register_figure_export(app, graph)

    @app.callback(
        Output("prompt-lens", "children"),
        Output("prompt-lens-target", "figure"),
        Output("prompt-lens-top", "figure"),
        Output("prompt-lens-position", "max"),
        Input("prompt-model", "value"),
        Input("prompt-text", "value"),
        Input("prompt-task", "value"),
        Input("prompt-lens-position", "value"),
        State("session-id", "data"),
    )
    def show_lens(model_name: Any, prompt: Any, task: Any, position: Any, session: Any) -> Any:
        from analysis.logit_lens import logit_lens

        blank = empty_figure("no logit lens")
        top = no_update
        try:
            prompt = check.text(
                "" if prompt is None else prompt, "prompt", selection.MAX_PROMPT_CHARS
            )
            model = state.open_model(model_name)
            if not model.is_causal:
                for graph in LENS_GRAPHS:
                    keep_figure(session, graph, None)
                note = info_alert(
                    f"{model.name} is an encoder: no trained LM head, so no logit lens.",
                    title="No logit lens",
                )
                return note, blank, blank, top
            n_tokens = int(model.to_tokens(prompt).shape[1])
            top = max(n_tokens - 1, 0)
            index = check.optional_whole(position, "position", n_tokens)
            with state.model_lock(model.name):
                lens = logit_lens(
                    model,
                    prompt,
                    position=-1 if index is None else index,
                    k=LENS_K,
                    task="ioi" if task == "ioi" else None,
                )
        except Exception as err:  # noqa: BLE001 - shown to the user
            for graph in LENS_GRAPHS:
                keep_figure(session, graph, None)
            alert = error_alert(err, title="No logit lens", id="prompt-lens-alert")
            return alert, blank, blank, top
        target = keep_figure(session, "prompt-lens-target", lens.plot("target"), label=model.name)
        tops = keep_figure(session, "prompt-lens-top", lens.plot("top_tokens"), label=model.name)
        return lens_summary(lens), target, tops, top

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
            model = state.open_model(model_name)
            built = make_task(task, model, n=1)
            text = built.clean_text[0] if built.clean_text else ""
            if not text.strip():  # e.g. induction: random token sequences, no text of its own
                tokens = built.clean_tokens[0].tolist()  # [pos]
                text = model.tokenizer.decode(tokens, skip_special_tokens=True).strip()
            if not text:
                raise ValueError(f"task: {task} has no text prompt for {model.name}")
        except Exception as err:  # noqa: BLE001 - shown to the user
            return no_update, error_alert(err, title="Cannot use that task", id="prompt-task-error")
        return text, None

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
