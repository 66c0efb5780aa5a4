"""Hostile input to the command line and the loading/anatomy API (issue 12, items 4 and 8).

The CLI answers every expected failure with exit 2 and exactly one line on stderr
(`workbench: error: ...`, never a traceback), an unexpected one with one line pointing to
`--debug` (exit 1). Output paths are checked before any computing. Checkpoint folders that are
not safetensors (pickle `.bin` / `.pth`), with a broken config.json or without weights are refused
with one `ValueError` naming the folder. Layer/head arguments must be real ints in range.

Bad checkpoint folders are built in a temporary folder from the real `tiny-ioi` checkpoint.
Most CLI cases call `workbench.cli.main` in-process (capsys); a few run the real subprocess,
among them argv bytes that are not UTF-8.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from analysis.anatomy.head_svd import qk_ov_svd
from analysis.anatomy.score_decomposition import decompose_score, firing_pairs
from tests.cli_helpers import run_cli
from workbench import ZOO, load_model
from workbench.cli import error_text, main
from workbench.loading import check_weight_files

PROMPT = "When Mary and John went to the store, John gave a drink to"
PICKLE_REFUSED = (
    "holds a pickle checkpoint ({file}), not safetensors; pickle checkpoints are refused "
    "(loading one can run code): convert it to model.safetensors"
)


def _copy(root: Path, name: str) -> Path:
    folder = root / name
    shutil.copytree(ZOO["tiny-ioi"].path(), folder, ignore=shutil.ignore_patterns("history"))
    return folder


def _to_pickle(folder: Path, file: str) -> None:
    weights = folder / "model.safetensors"
    torch.save(load_file(weights), folder / file)
    weights.unlink()


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    """name -> a tiny-ioi copy damaged one way ('both': a pickle beside the safetensors; 'file':
    a plain file, not a folder)."""
    root = tmp_path_factory.mktemp("checkpoints")
    folders = {
        name: _copy(root, name)
        for name in (
            "pickle_bin",
            "pickle_pth",
            "bad_json",
            "json_list",
            "no_weights",
            "truncated",
            "wrong_shapes",
            "no_config",
            "both",
        )
    }
    _to_pickle(folders["pickle_bin"], "pytorch_model.bin")
    _to_pickle(folders["pickle_pth"], "model.pth")
    (folders["bad_json"] / "config.json").write_text('{"model_type": "gpt2",')
    (folders["json_list"] / "config.json").write_text("[1, 2]")
    (folders["no_weights"] / "model.safetensors").unlink()
    weights = folders["truncated"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    config = json.loads((folders["wrong_shapes"] / "config.json").read_text())
    (folders["wrong_shapes"] / "config.json").write_text(json.dumps({**config, "n_embd": 64}))
    (folders["no_config"] / "config.json").unlink()
    torch.save(
        load_file(folders["both"] / "model.safetensors"), folders["both"] / "pytorch_model.bin"
    )
    folders["file"] = root / "plain-file.txt"
    folders["file"].write_text("not a folder")
    return folders


def _loading_messages(bad: dict[str, Path]) -> dict[str, str]:
    def at(name: str) -> str:
        return repr(str(bad[name]))

    return {
        "pickle_bin": f"model: the folder {at('pickle_bin')} "
        + PICKLE_REFUSED.format(file="pytorch_model.bin"),
        "pickle_pth": f"model: the folder {at('pickle_pth')} "
        + PICKLE_REFUSED.format(file="model.pth"),
        "bad_json": f"model: the config.json of {at('bad_json')} is not valid JSON "
        "(Expecting property name enclosed in double quotes: line 1 column 23 (char 22))",
        "json_list": f"model: the config.json of {at('json_list')} is not a HuggingFace config "
        "(not a JSON object)",
        "no_weights": f"model: the folder {at('no_weights')} has no weights (no model.safetensors)",
        "truncated": f"model: cannot load the folder {at('truncated')}: "
        "Error while deserializing header: invalid header length",
        "wrong_shapes": f"model: cannot load the folder {at('wrong_shapes')}: "
        "the weights' shapes do not match config.json",
        "no_config": f"model: {at('no_config')} is not a HuggingFace checkpoint (no config.json)",
    }


LOADING_CASES = [
    "pickle_bin",
    "pickle_pth",
    "bad_json",
    "json_list",
    "no_weights",
    "truncated",
    "wrong_shapes",
    "no_config",
]


def _cli(capsys, *argv: str) -> tuple[int, str]:
    """`workbench ARGV` in-process -> (exit code, stderr); the pipes are read fresh."""
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().err


def _assert_one_line(err: str, expected: str) -> None:
    assert "Traceback" not in err, err
    assert err.splitlines() == [expected], err


# ----------------------------------------------------------------------------- loading: API


@pytest.mark.parametrize("case", LOADING_CASES)
def test_load_model_refuses_bad_folders_with_one_value_error(bad, case):
    with pytest.raises(ValueError) as err:
        load_model(bad[case])
    assert str(err.value) == _loading_messages(bad)[case]
    assert "weights_only" not in str(err.value)


def test_safetensors_beside_a_pickle_is_what_loads(bad, zoo_model):
    model = load_model(bad["both"])
    tokens = zoo_model("tiny-ioi").to_tokens(PROMPT)
    with torch.no_grad():
        assert torch.equal(model(tokens), zoo_model("tiny-ioi")(tokens))


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            ["config.json", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin"],
            "model: the hub repository 'org/m' "
            + PICKLE_REFUSED.format(file="pytorch_model-00001-of-00002.bin"),
        ),
        (
            ["config.json", "weights.ckpt"],
            "model: the hub repository 'org/m' " + PICKLE_REFUSED.format(file="weights.ckpt"),
        ),
        (
            ["config.json", "tf_model.h5", "sub/model.safetensors"],
            "model: the hub repository 'org/m' has no weights (no model.safetensors)",
        ),
    ],
)
def test_weight_listing_check_refuses_pickle_only_repositories(files, expected):
    with pytest.raises(ValueError) as err:
        check_weight_files(files, "the hub repository 'org/m'")
    assert str(err.value) == expected


@pytest.mark.parametrize(
    "files",
    [["model.safetensors", "pytorch_model.bin"], ["model.safetensors.index.json", "a.safetensors"]],
)
def test_weight_listing_check_accepts_safetensors(files):
    assert check_weight_files(files, "x") is None


# ----------------------------------------------------------------------------- loading: CLI


@pytest.mark.parametrize("case", LOADING_CASES)
def test_cli_models_on_a_bad_folder_exits_2_with_one_line(bad, capsys, case):
    code, err = _cli(capsys, "models", str(bad[case]))
    assert code == 2
    _assert_one_line(err, "workbench: error: " + _loading_messages(bad)[case])


@pytest.mark.parametrize("command", [("stats", "{}", PROMPT), ("svd", "{}", "0", "0")])
def test_cli_analyses_refuse_a_pickle_checkpoint(bad, capsys, command):
    argv = [part.format(bad["pickle_bin"]) for part in command]
    code, err = _cli(capsys, *argv)
    assert code == 2
    _assert_one_line(err, "workbench: error: " + _loading_messages(bad)["pickle_bin"])


# ------------------------------------------------------------------ output paths, before work


def _output_cases(bad: dict[str, Path], tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, expected stderr line). The model is 'no-such-model' wherever the path is
    at fault: the path error proves the path was checked before the model was loaded."""
    missing = tmp / "missing" / "c.json"
    folder_html = tmp / "folder.html"
    folder_html.mkdir(exist_ok=True)
    proc_link = tmp / "proc-link"
    if not proc_link.is_symlink():
        proc_link.symlink_to("/proc/self")
    circuit = ["circuit", "no-such-model", "ioi", "--out"]
    figure = ["figure", "stats", "no-such-model", PROMPT, "-o"]
    e = "workbench: error: "
    return {
        "out into a missing folder": (
            [*circuit, str(missing)],
            f"{e}--out: the folder {missing.parent} does not exist",
        ),
        "out is a folder": ([*circuit, str(tmp)], f"{e}--out: {tmp} is a folder; give a file name"),
        "out under a file": (
            [*circuit, f"{bad['file']}/c.json"],
            f"{e}--out: {bad['file']} is not a folder",
        ),
        "out to /dev/null": (
            [*circuit, "/dev/null"],
            f"{e}--out: /dev/null is under /proc, /sys or /dev; choose a file",
        ),
        "out through a symlink into /proc": (
            [*circuit, f"{proc_link}/c.json"],
            f"{e}--out: {proc_link}/c.json is under /proc, /sys or /dev; choose a file",
        ),
        "figure into /proc": (
            [*figure, "/proc/x.html"],
            f"{e}-o: /proc/x.html is under /proc, /sys or /dev; choose a file",
        ),
        "figure into /sys": (
            [*figure, "/sys/x.svg"],
            f"{e}-o: /sys/x.svg is under /proc, /sys or /dev; choose a file",
        ),
        "figure onto a folder": (
            [*figure, str(folder_html)],
            f"{e}-o: {folder_html} is a folder; give a file name",
        ),
        "figure with a trailing slash": (
            [*figure, f"{tmp}/x.html/"],
            f"{e}-o: {tmp}/x.html/ names a folder; give a file name",
        ),
        "figure into a missing folder": (
            [*figure, str(tmp / "nope" / "f.png")],
            f"{e}-o: the folder {tmp / 'nope'} does not exist",
        ),
        "figure with a bad suffix": (
            [*figure, str(tmp / "f.exe")],
            f"{e}-o: {str(tmp / 'f.exe')!r} must end in one of .png, .svg, .pdf, .html",
        ),
        "figure run into /proc": (
            ["figure", "run", "20260101-000000-deadbeef", "-o", "/proc/self/x.png"],
            f"{e}-o: /proc/self/x.png is under /proc, /sys or /dev; choose a file",
        ),
    }


OUTPUT_CASES = [
    "out into a missing folder",
    "out is a folder",
    "out under a file",
    "out to /dev/null",
    "out through a symlink into /proc",
    "figure into /proc",
    "figure into /sys",
    "figure onto a folder",
    "figure with a trailing slash",
    "figure into a missing folder",
    "figure with a bad suffix",
    "figure run into /proc",
]


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_bad_output_paths_are_refused_before_computing(bad, tmp_path, capsys, case):
    argv, expected = _output_cases(bad, tmp_path)[case]
    code, err = _cli(capsys, *argv)
    assert code == 2
    _assert_one_line(err, expected)
    assert not (tmp_path / "missing").exists()


# -------------------------------------------------------------------- counts, layers, heads

COUNT_CASES = [
    (
        ["circuit", "tiny-ioi", "ioi", "--show", "-1"],
        "argument --show: expected an integer >= 0, got -1",
    ),
    (
        ["circuit", "tiny-ioi", "ioi", "--top-n", "-3"],
        "argument --top-n: expected an integer >= 0, got -3",
    ),
    (["circuit", "tiny-ioi", "ioi", "--n", "0"], "argument --n: expected an integer >= 1, got 0"),
    (
        ["circuit", "tiny-ioi", "ioi", "--ig-steps", "zero"],
        "argument --ig-steps: expected an integer >= 1, got 'zero'",
    ),
    (
        ["figure", "stats", "tiny-ioi", PROMPT, "-o", "f.svg", "--width", "0"],
        "argument --width: expected an integer >= 1, got 0",
    ),
    (["svd", "tiny-ioi", "2", "0"], "layer: 2 is out of range for tiny-ioi (2 layers: 0-1)"),
    (["svd", "tiny-ioi", "0", "-1"], "head: expected a non-negative whole number, got -1"),
    (
        ["svd", "tiny-ioi", "0", "0", "--components", "-1"],
        "n_components: expected an integer >= 0, got -1",
    ),
    (
        ["decompose", "tiny-ioi", PROMPT, "1", "4", "3", "1"],
        "head: 4 is out of range for tiny-ioi (4 heads: 0-3)",
    ),
    ([], "the following arguments are required: command"),
]


@pytest.mark.parametrize(("argv", "message"), COUNT_CASES)
def test_bad_counts_layers_and_heads_exit_2_with_one_line(capsys, argv, message):
    code, err = _cli(capsys, *argv)
    assert code == 2
    _assert_one_line(err, f"workbench: error: {message}")


def test_an_unknown_command_exits_2_with_argparse_reason_on_one_line(capsys):
    code, err = _cli(capsys, "frobnicate", "--json")
    assert code == 2
    assert err.startswith("workbench: error: argument command: invalid choice: 'frobnicate'")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


# ---------------------------------------------------------------------------- the store


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "--store", "{file}", "list"],
        ["stats", "no-such-model", PROMPT, "--save", "--store", "{file}"],  # store checked first
        ["figure", "run", "20260101-000000-deadbeef", "--store", "{file}", "-o", "{tmp}/f.svg"],
        ["corpus-stats", "no-such-model", "--texts", "{file}", "--store", "{file}"],
    ],
)
def test_a_store_that_is_a_file_exits_2_with_one_line(bad, tmp_path, capsys, argv):
    code, err = _cli(capsys, *(a.format(file=bad["file"], tmp=tmp_path) for a in argv))
    assert code == 2
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("workbench: error: store: ") and str(bad["file"]) in err, err


# ------------------------------------------------------------------- the top-level handler


def test_debug_shows_the_traceback_and_still_ends_in_one_error_line(bad, capsys):
    code, err = _cli(capsys, "models", str(bad["no_weights"]), "--debug")
    assert code == 2
    assert err.startswith("Traceback (most recent call last):")
    expected = "workbench: error: " + _loading_messages(bad)["no_weights"]
    assert err.splitlines()[-1] == expected


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_is_one_line_pointing_to_debug(monkeypatch, capsys, debug):
    """A bug inside a command (here: a command whose body fails with a RuntimeError)."""
    from workbench.cli import models

    def broken(args):
        raise RuntimeError("tensor went\nsideways")

    monkeypatch.setattr(models, "run", broken)
    code, err = _cli(capsys, *(["--debug"] if debug else []), "models")
    assert code == 1
    line = (
        "workbench: internal error: RuntimeError: tensor went (run with --debug for the traceback)"
    )
    assert err.splitlines()[-1] == line
    assert ("Traceback" in err) is debug


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (ValueError("prompt: bad byte 'caf\udcff'"), "prompt: bad byte 'caf\\udcff'"),
        (ValueError("colour \x1b[31mred\x1b[0m"), "colour \\x1b[31mred\\x1b[0m"),
        (ValueError("\n\nfirst\nsecond"), "first"),
        (ValueError("carriage\rreturn"), "carriage"),
        (
            FileNotFoundError(2, "No such file or directory", "/x/y"),
            "/x/y: No such file or directory",
        ),
        (KeyError("no run with id 'r1'"), "no run with id 'r1'"),
        (NotImplementedError(), "NotImplementedError"),
    ],
)
def test_error_text_is_one_printable_line(error, line):
    text = error_text(error)
    assert text == line
    assert text.isprintable() and text.encode("utf-8")  # printing it cannot fail


# ------------------------------------------------------------------------ anatomy: the API


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: qk_ov_svd(m, True, 0), "layer: expected a whole number, got True"),
        (lambda m: qk_ov_svd(m, 0, False), "head: expected a whole number, got False"),
        (lambda m: qk_ov_svd(m, 1.0, 0), "layer: expected a whole number, got 1.0"),
        (lambda m: qk_ov_svd(m, "1", 0), "layer: expected a whole number, got '1'"),
        (lambda m: qk_ov_svd(m, 0, 4), "head: 4 is out of range for tiny-ioi (4 heads: 0-3)"),
        (
            lambda m: qk_ov_svd(m, np.int64(-1), 0),
            "layer: expected a non-negative whole number, got -1",
        ),
        (
            lambda m: qk_ov_svd(m, 0, 0, top_tokens=True),
            "top_tokens: expected an integer >= 1, got True",
        ),
        (
            lambda m: decompose_score(m, PROMPT, True, 0, 3, 1),
            "layer: expected a whole number, got True",
        ),
        (
            lambda m: decompose_score(m, PROMPT, 1, np.bool_(True), 3, 1),
            "head: expected a whole number, got np.True_",
        ),
        (
            lambda m: decompose_score(m, PROMPT, 1, 0, True, 0),
            "query: expected an integer token position, got True",
        ),
        (
            lambda m: firing_pairs(m, PROMPT, 2, 0),
            "layer: 2 is out of range for tiny-ioi (2 layers: 0-1)",
        ),
    ],
)
def test_layer_and_head_must_be_real_ints_in_range(zoo_model, call, message):
    with pytest.raises(ValueError) as err:
        call(zoo_model("tiny-ioi"))
    assert str(err.value) == message


# ------------------------------------------------------------------- real subprocess runs


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["stats", "tiny-ioi", b"caf\xff\xfe"], "not valid UTF-8"),
        (
            ["models", b"/tmp/no-such-\xff-folder"],
            "no checkpoint folder at '/tmp/no-such-\\udcff-folder'",
        ),
        (
            ["figure", "stats", "tiny-ioi", "x", "-o", "/proc/x.html"],
            "is under /proc, /sys or /dev",
        ),
    ],
)
def test_the_real_command_exits_2_with_one_printable_line(argv, needle):
    proc = run_cli(*argv)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("workbench: error: ") and needle in lines[0], proc.stderr
    assert lines[0].isprintable()


@pytest.mark.slow
def test_the_real_command_refuses_a_pickle_folder(bad):
    proc = run_cli("models", str(bad["pickle_bin"]))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "workbench: error: " + _loading_messages(bad)["pickle_bin"]
    ], proc.stderr
