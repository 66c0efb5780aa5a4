"""`workbench stats`: per-head JSON, the per-query table, saving a run, one-line errors (exit 2)."""

from __future__ import annotations

import json
import re

import pytest

from analysis.statistics.head_stats import HeadStats
from tests.cli_helpers import run_cli as run_cli_with
from workbench.cli import main
from workbench.store import RunStore

PROMPT = "When Mary and John went to the store, John gave a drink to"


def run_cli(*args: str, store=None):
    return run_cli_with(*["stats", *args], store=store)


@pytest.mark.slow
def test_stats_json_per_head_and_per_query_tables_and_saved_run(tmp_path, zoo_model):
    proc = run_cli(
        "tiny-ioi", PROMPT, "Mary and John", "--json", "--per-query", "--save", store=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["model"] == "tiny-ioi" and payload["config"]["backend"] == "auto"
    heads = {(row["layer"], row["head"]) for row in payload["per_head"]}
    assert heads == {(layer, head) for layer in range(2) for head in range(4)}
    n_queries = sum(len(tokens) for tokens in payload["tokens"])
    assert len(payload["per_query"]) == n_queries * 8
    assert payload["tokens"][0] == zoo_model("tiny-ioi").to_str_tokens(PROMPT)
    row = payload["per_query"][0]
    assert list(row) == [
        *["prompt", "layer", "head", "query", "token"],
        *["entropy", "sink", "max_prob", "mean_distance", "sum_sq", "lse"],
    ]
    store = RunStore(tmp_path)
    assert store.get_run(payload["run_id"]).kind == "attention_stats"
    saved = store.load_result(payload["run_id"])
    assert isinstance(saved, HeadStats)
    assert saved.to_frame()["entropy"].tolist() == [r["entropy"] for r in payload["per_query"]]
    per_head = store.load_table(payload["run_id"], "per_head")
    assert per_head["entropy"].tolist() == [r["entropy"] for r in payload["per_head"]]


@pytest.mark.slow
def test_unknown_statistic_exits_2_with_one_line():
    proc = run_cli("tiny-ioi", PROMPT, "--stats", "entropy,nonsense")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "workbench: error: stats: unknown statistic(s) ['nonsense']; choose from "
        "['lse', 'entropy', 'max_prob', 'sink', 'mean_distance', 'sum_sq', 'distance_hist', "
        "'block_mass']"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tiny-ioi", PROMPT, "--backend", "cuda-magic"], "backend: unknown backend 'cuda-magic'"),
        (["tiny-ioi", "   "], r"prompts\[0\]: empty prompt"),
        (["tiny-ioi", PROMPT, "--stats", ","], "--stats"),
    ],
)
def test_bad_input_returns_2_with_one_line_in_process(capsys, args, message):
    assert main(["stats", *args]) == 2
    # (in-process, HF's weight-loading progress bar may share stderr: the subprocess test above
    # checks that stderr is exactly one line)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("workbench: error:")]
    assert len(lines) == 1 and re.search(message, lines[0])
