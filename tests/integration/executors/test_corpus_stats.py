"""Corpus statistics on tiny-ioi, in process: numbers against an independent float64 reference
(loops over TransformerLens' cached pattern and scipy's entropy),
sharded runs in the store, resuming an interrupted run, the CLI and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
import torch
from pandas.testing import assert_frame_equal

from analysis.statistics.corpus_stats import CorpusStats, corpus_stats, n_distance_buckets
from workbench.executors import InProcessExecutor
from workbench.store import RunStore
from workbench.tasks.ioi_prompts import generate_ioi_prompts

TEXTS = [p.text for p in generate_ioi_prompts(10, seed=7)]


class CountingExecutor(InProcessExecutor):
    """In-process, recording each shard it computes; raises after `stop_after` shards."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.computed: list[str] = []
        self.stop_after = stop_after

    def run(self, job, shards, on_result):
        for shard in shards:
            if len(self.computed) == self.stop_after:
                raise KeyboardInterrupt("stopped by the test")
            self.computed.append(shard.shard_id)
            on_result(shard, job.fn(job.model, shard))


def _reference_rows(model, text):
    """Per (layer, head, query): entropy, sink, max_prob, mean_distance, histogram, by loops
    over TransformerLens' own cached pattern."""
    _, cache = model.bridge.run_with_cache(model.to_tokens(text))
    n_buckets = n_distance_buckets(model.n_ctx)
    rows = {}
    for layer in range(model.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0].double().numpy()
        for head, query in np.ndindex(pattern.shape[:2]):
            p = pattern[head, query]
            hist = np.zeros(n_buckets)
            for key, mass in enumerate(p):
                hist[abs(query - key).bit_length()] += mass
            distance = sum(mass * abs(query - key) for key, mass in enumerate(p))
            rows[layer, head, query] = (scipy.stats.entropy(p), p[0], p.max(), distance, hist)
    return rows


@pytest.mark.slow
def test_statistics_match_an_independent_reference(zoo_model):
    model = zoo_model("tiny-ioi")
    texts = TEXTS[:3]
    stats = corpus_stats(model, texts, docs_per_shard=2, quantiles=(0.1, 0.5, 0.9))
    reference = [_reference_rows(model, text) for text in texts]
    per_head = stats.per_head.set_index(["layer", "head"])
    for (layer, head), row in per_head.iterrows():
        values = [v for doc in reference for key, v in doc.items() if key[:2] == (layer, head)]
        assert row["n_queries"] == len(values) and row["n_documents"] == len(texts)
        for index, name in enumerate(("entropy", "sink", "max_prob", "mean_distance")):
            column = np.array([v[index] for v in values])
            # float32 statistics (instrumented attention) vs a float64 reference
            assert row[f"{name}_mean"] == pytest.approx(column.mean(), rel=1e-5, abs=2e-6)
            for q in (0.1, 0.5, 0.9):
                expected = np.quantile(column, q)
                assert row[f"{name}_q{q * 100:g}"] == pytest.approx(expected, rel=1e-5, abs=2e-6)
        hist = np.mean([v[4] for v in values], axis=0)
        np.testing.assert_allclose(stats.distance_hist[layer, head].numpy(), hist, atol=2e-6)
    assert torch.allclose(stats.distance_hist.sum(-1), torch.ones(2, 4, dtype=torch.float64))


def test_result_round_trips_and_plots(zoo_model):
    stats = corpus_stats(zoo_model("tiny-ioi"), TEXTS[:4], docs_per_shard=3)
    again = CorpusStats.from_json(stats.to_json())
    assert_frame_equal(again.per_head, stats.per_head, check_exact=True)
    assert torch.equal(again.distance_hist, stats.distance_hist) and again.config == stats.config
    assert set(stats.tables()) == {"main", "distance_histogram"}
    assert stats.plot("sink").data[0].z.shape == (2, 4)
    assert len(stats.plot("distance").data) == 8
    with pytest.raises(ValueError, match="kind"):
        stats.plot("nope")


def test_interrupted_run_resumes_and_skips_finished_shards(zoo_model, tmp_path):
    model, store = zoo_model("tiny-ioi"), RunStore(tmp_path)
    expected = corpus_stats(model, TEXTS, docs_per_shard=2)  # 5 shards, in memory
    first = CountingExecutor(stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        corpus_stats(model, TEXTS, docs_per_shard=2, executor=first, store=store)
    (interrupted,) = store.list_runs(include_incomplete=True)
    assert interrupted.status == "interrupted" and len(first.computed) == 3

    second = CountingExecutor()
    resumed = corpus_stats(model, TEXTS, docs_per_shard=2, executor=second, store=store)
    assert len(second.computed) == 2 and not set(first.computed) & set(second.computed)
    assert resumed.run_id == interrupted.run_id
    assert_frame_equal(resumed.per_head, expected.per_head, check_exact=True)
    assert torch.equal(resumed.distance_hist, expected.distance_hist)
    assert len(store.load_shards(resumed.run_id)) == 5
    assert_frame_equal(store.load_table(resumed.run_id, "main"), expected.per_head)


class RepeatingExecutor(InProcessExecutor):
    """Reports every shard twice, like a retried task whose first result also arrived."""

    def run(self, job, shards, on_result):
        for shard in shards:
            frame = job.fn(job.model, shard)
            on_result(shard, frame)
            on_result(shard, frame.assign(entropy=frame["entropy"] + 1))  # must be ignored


def test_a_shard_reported_twice_counts_once(zoo_model, tmp_path):
    model = zoo_model("tiny-ioi")
    expected = corpus_stats(model, TEXTS, docs_per_shard=3)
    got = corpus_stats(model, TEXTS, docs_per_shard=3, executor=RepeatingExecutor(), store=tmp_path)
    assert_frame_equal(got.per_head, expected.per_head, check_exact=True)
    assert int(got.per_head["n_queries"].sum()) == int(expected.per_head["n_queries"].sum())
    assert len(RunStore(tmp_path).load_shards(got.run_id)) == 4


def test_ray_executor_without_ray_is_one_clear_error(zoo_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ValueError, match=r"executor: 'ray' needs Ray, which is not installed"):
        corpus_stats(zoo_model("tiny-ioi"), TEXTS[:2], executor="ray")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"texts": []}, "texts: expected a non-empty list"),
        ({"texts": "one string"}, "texts: expected a non-empty list"),
        ({"texts": ["ok", "  "]}, "texts: document 1 is empty"),
        ({"texts": ["Mary " * 200]}, "texts: document 0: prompt: .* longer than"),
        ({"docs_per_shard": 0}, "shard size"),
        ({"quantiles": (0.5, 1.5)}, "quantiles"),
        ({"executor": "spark"}, "executor: 'spark' is not one of"),
        ({"backend": "cuda"}, "backend: unknown backend"),
    ],
)
def test_bad_input_is_refused(zoo_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        corpus_stats(zoo_model("tiny-ioi"), **{"texts": TEXTS[:2], **kwargs})


def _cli(*args, store):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WORKBENCH_STORE": str(store)}
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", "corpus-stats", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_stores_a_sharded_run_and_reports_errors_in_one_line(zoo_model, tmp_path, capsys):
    (tmp_path / "a.txt").write_text("\n".join(TEXTS[:5]) + "\n\n")
    (tmp_path / "b.txt").write_text("\n".join(TEXTS[5:]))
    proc = _cli(
        "tiny-ioi",
        "--texts",
        str(tmp_path / "*.txt"),
        "--docs-per-shard",
        "4",
        "--json",
        store=tmp_path / "store",
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["documents"] == 10 and len(payload["per_head"]) == 8
    store = RunStore(tmp_path / "store")
    assert len(store.load_shards(payload["run_id"])) == 3
    expected = corpus_stats(zoo_model("tiny-ioi"), TEXTS, docs_per_shard=4)
    assert payload["per_head"] == expected.per_head.to_dict(orient="records")

    from workbench.cli import main  # the errors come before any loading: run them in process

    capsys.readouterr()  # drop what loading printed
    for args, message in [
        (("--texts", str(tmp_path / "none*.txt")), "--texts: no files match"),
        (("--texts", str(tmp_path / "a.txt"), "--address", "x:1"), "--address: only used"),
        (("--texts", str(tmp_path / "a.txt"), "--docs-per-shard", "0"), "--docs-per-shard"),
    ]:
        assert main(["corpus-stats", "tiny-ioi", *args, "--store", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
