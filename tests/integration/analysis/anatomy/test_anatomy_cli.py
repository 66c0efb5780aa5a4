"""`workbench svd`, `workbench decompose` and `workbench heads`: one run through a real
subprocess (entry point, JSON on stdout), the rest in-process through `workbench.cli.main`
(same argument parsing and error handling, without paying the import cost per case)."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import run_cli


@pytest.mark.slow
def test_svd_json(tmp_path):
    proc = run_cli(
        "svd", "tiny-ioi", "1", "2", "--components", "1", "--json", "--save", store=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert (payload["layer"], payload["head"]) == (1, 2)
    assert len(payload["qk_singular_values"]) == 32
    assert payload["spectral_norm"] > 0 and payload["run_id"]
    assert {r["matrix"] for r in payload["readouts"]} == {"qk", "ov"}


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    from workbench.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_decompose_json_reconstructs_the_score(capsys):
    code, stdout, stderr = run_main(
        capsys,
        "decompose",
        "tiny-ioi",
        "When Mary and John went to the store, John gave a drink to",
        "1",
        "0",
        "14",
        "13",
        "--upstream",
        "3",
        "--json",
    )
    assert code == 0, stderr
    payload = json.loads(stdout)
    assert payload["relative_error"] < 1e-4
    assert sum(payload["terms"]) == pytest.approx(payload["score"], rel=1e-9)
    assert len(payload["upstream"]["query"]) == 3 and len(payload["upstream"]["key"]) == 3


def test_heads_json_on_tiny_induction(capsys):
    code, stdout, stderr = run_main(capsys, "heads", "tiny-induction", "--json")
    assert code == 0, stderr
    payload = json.loads(stdout)
    labels = {(h["layer"], h["head"]): h["label"] for h in payload["heads"]}
    assert labels[(0, 3)] == "previous_token"
    assert all(labels[(1, h)] == "induction" for h in range(8))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("svd", "tiny-ioi", "2", "0"), "layer: 2 is out of range"),
        (("svd", "tiny-ioi", "0", "9"), "head: 9 is out of range"),
        (("decompose", "tiny-ioi", "When Mary", "0", "0", "7", "1"), "query: position 7"),
        (("decompose", "tiny-ioi", "When Mary", "0", "0", "1", "2"), "key: position 2"),
        (("heads", "tiny-ioi", "--method", "dbscan"), "method"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, message):
    code, _, stderr = run_main(capsys, *args)
    assert code == 2
    # in-process, transformers may already be imported before main() quiets its progress bars
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("Loading weights")]
    assert len(lines) == 1 and message in lines[0]
