"""The architecture matrix: every analysis on every model family, or a documented refusal.

Shared by the test (tests/integration/architectures/test_architecture_matrix.py) and by
scripts/architecture_matrix.py, which writes docs/architectures.md from the same cells.

- `ANALYSES` (the columns, from analyses.py): name -> `Analysis(run, check)`, a tiny-budget
  run and a cheap sanity check (finite, non-zero numbers of the right shapes); every method
  of `circuits.tracing.METHODS` is a column.
- `REFUSALS`: (family, analysis) -> a regex that the refusal's message must match. A cell is
  "ok", or "refused" when it raised `ValueError`/`NotImplementedError` with a message matching
  its row.
- `DEFECTS`: (family, analysis) -> a regex for a known bug (a crash or a failed sanity check,
  matched against "ExceptionType: first line") that is being fixed elsewhere; the test marks
  such a cell xfail and the document lists it as a defect. This table should be empty.
- Anything else fails: another exception, a refusal with no row (or a message that does not
  match its row), a failed sanity check, or a row whose cell now runs ("stale": delete the
  row). Editing the two tables is all it takes when a refusal is lifted or added.
- `run_cell(family, analysis, model)` -> `Cell`; `render_markdown(cells)` -> the text of
  docs/architectures.md (deterministic: the same cells give the same text).
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.adapters.family_checkpoints import FAMILIES
from tests.integration.architectures.analyses import ANALYSES

DOC = Path(__file__).resolve().parents[3] / "docs" / "architectures.md"


def _rows(families, analyses, pattern: str) -> dict[tuple[str, str], str]:
    return {(family, analysis): pattern for family in families for analysis in analyses}


ENCODERS = tuple(name for name, spec in FAMILIES.items() if spec.encoder)
ANATOMY = ("head_svd", "score_decomposition", "entropy_collapse", "circuit:svd")
STATISTICS = ("statistics", "corpus_statistics", "taxonomy", "entropy_collapse")
EDGE_METHODS = ("circuit:path", "circuit:exhaustive", "circuit:eap", "circuit:eap-ig")
NO_ANATOMY = (
    "gemma3",
    "phi",
    "stablelm",
    "olmo2",
    "starcoder2",
    "granite",
    "gpt_bigcode",
    "gpt_oss",
    "mixtral",
    "gpt_neo",
    "bloom",
    "roberta",
)
PARALLEL = ("gpt_neox", "phi", "gptj", "falcon")
NOT_SOFTMAX = ("gemma2", "gpt_neo", "bloom")  # soft-capping, a local window, ALiBi
NOT_ADDITIVE = ("gemma2", "gemma3", "olmo2", "bloom")  # see circuits.residual_additivity

# (family, analysis) -> regex the refusal's message must match. Delete a row when the
# analysis starts to run on that family (the test reports it as stale until then). Later
# rows replace earlier ones for the same cell.
REFUSALS: dict[tuple[str, str], str] = {
    **_rows(NO_ANATOMY, ANATOMY, r"head anatomy supports"),
    **_rows(("gpt_neo",), STATISTICS, r"did not run through it"),
    **_rows(("bloom",), STATISTICS, r"computes attention its own way"),
    **_rows(ENCODERS, ["guidance"], r"guidance needs a decoder"),
    **_rows(ENCODERS, ["circuit:svd"], r"SVD tracing needs a decoder task"),
    **_rows(ENCODERS, ["circuit:atp*"], r"atp\* reads the logits"),
    **_rows(PARALLEL, ["circuit:atp*"], r"atp\* needs sequential attention/MLP blocks"),
    **_rows(
        ("qwen3", "gemma3", "stablelm", "starcoder2", "granite", "gpt_oss", "mixtral"),
        ["circuit:atp*"],
        r"atp\* cannot (reproduce|read) .*rotary embedding",
    ),
    **_rows(NOT_SOFTMAX, ["circuit:atp*"], r"not plain causal softmax attention"),
    ("phi3", "circuit:atp*"): r"atp\* recomputes attention from the bridge's rotate-half",
    ("gemma2", "entropy_collapse"): r"logits do not reproduce hook_pattern",
    **_rows(("gptj", "gpt_neo"), ["guidance"], r"cannot rebuild .* attention from q and k"),
    # post-sublayer norms (Gemma-2/3, OLMo-2) or a residual added inside attention (BLOOM):
    # block_out != block_in + attn_out + mlp_out, so per-edge deltas would be wrong
    **_rows(
        NOT_ADDITIVE,
        (*EDGE_METHODS, "circuit:acdc", "circuit:atp*"),
        r"add their attention and MLP outputs to the residual unchanged",
    ),
}

# (family, analysis) -> regex of a known bug being fixed elsewhere ("Type: message"). These
# are crashes or wrong numbers, not refusals: the test xfails them; delete the row when fixed.
DEFECTS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Cell:
    """One cell's outcome: ok / refused / defect pass (defect as xfail); stale / undocumented /
    error / wrong fail."""

    family: str
    analysis: str
    status: str
    message: str = ""
    pattern: str = ""  # the REFUSALS / DEFECTS row it matched

    @property
    def passed(self) -> bool:
        return self.status in ("ok", "refused", "defect")


def first_line(err: BaseException) -> str:
    """The exception's first non-empty line (its type name when it has no text)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def run_cell(family: str, analysis: str, model: Any) -> Cell:
    """Run `analysis` on `model` (of `family`) and classify the outcome (see module doc)."""
    refusal, defect = REFUSALS.get((family, analysis)), DEFECTS.get((family, analysis))
    spec = ANALYSES[analysis]
    hooks = model.active_hook_count()  # the bridge's own (BERT has some); a leak adds to them
    try:
        result = spec.run(model)
        spec.check(model, result)
        assert model.active_hook_count() == hooks, "hooks left installed on the shared model"
    except (ValueError, NotImplementedError) as err:
        message = first_line(err)
        if defect is not None and re.search(defect, f"{type(err).__name__}: {message}"):
            return Cell(family, analysis, "defect", f"{type(err).__name__}: {message}", defect)
        if refusal is not None and re.search(refusal, message):
            return Cell(family, analysis, "refused", message, refusal)
        why = "undocumented" if refusal is None else f"unexpected (row says {refusal!r})"
        return Cell(family, analysis, "undocumented", f"{why} {type(err).__name__}: {message}")
    except AssertionError as err:
        message = f"sanity check failed: {first_line(err)}"
        if defect is not None and re.search(defect, message):
            return Cell(family, analysis, "defect", message, defect)
        return Cell(family, analysis, "wrong", message)
    except Exception as err:  # noqa: BLE001 - every other exception is a failing cell
        message = f"{type(err).__name__}: {first_line(err)}"
        if defect is not None and re.search(defect, message):
            return Cell(family, analysis, "defect", message, defect)
        where = traceback.extract_tb(err.__traceback__)[-1]
        place = f"{where.filename.rsplit('/', 1)[-1]}:{where.lineno}"
        return Cell(family, analysis, "error", f"{message} (at {place})")
    if refusal is not None or defect is not None:
        row = "REFUSALS" if refusal is not None else "DEFECTS"
        return Cell(family, analysis, "stale", f"ran fine: delete its row in {row}")
    return Cell(family, analysis, "ok")


def versions() -> dict[str, str]:
    """The versions the matrix was produced with (stated in the document)."""
    from importlib.metadata import version

    return {name: version(name) for name in ("transformers", "transformer-lens")}


REGENERATE = "OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python scripts/architecture_matrix.py"


def render_markdown(cells: dict[tuple[str, str], Cell]) -> str:
    """docs/architectures.md from the matrix's cells (every family x every analysis)."""
    analyses = list(ANALYSES)
    notes: dict[tuple[str, str], int] = {}  # (status, row pattern) -> note number
    texts: dict[int, str] = {}  # note number -> the first matching cell's message
    lines = [
        "# Architectures: which analysis runs on which model family",
        "",
        "Generated by `scripts/architecture_matrix.py` from the architecture matrix test",
        "(`tests/integration/architectures/`); do not edit by hand. Each family is a tiny",
        "random checkpoint (2 layers, 4 heads, d_model 64) written with transformers'",
        "`save_pretrained` and loaded by folder with `workbench.load_model`, as a user would.",
        "`ok`: the analysis ran and its numbers passed a sanity check (finite, right shapes;",
        "score decompositions sum to the model's own q.k). `refused`: a `ValueError` or",
        "`NotImplementedError` with the documented reason in the note. `defect`: a known bug",
        "(a crash or a failed sanity check) listed in the matrix's `DEFECTS` table while it is",
        "being fixed. The test fails on any other outcome and when this file disagrees with",
        "the run.",
        "",
        "Circuit methods run on the induction task (decoders) or the similarity task",
        "(encoders); the attack is `raise_loss` (decoders) or `embedding` (encoders). An",
        "analysis that leaves hooks on the model fails its cell. The statistics of every",
        "family are also checked against transformers' eager attention at 1e-5",
        "(tests/integration/adapters/test_statistics_families.py).",
        "",
        "Gemma-2, Gemma-3 and gpt-oss slide a 4-token window on some layers (Gemma-2/3 also",
        "soft-cap their scores; gpt-oss has learned attention sinks), so those paths are",
        "exercised. Checkpoints (model class; config in",
        "tests/integration/adapters/family_checkpoints.py): "
        + ", ".join(f"{name} `{spec.model.__name__}`" for name, spec in FAMILIES.items())
        + ".",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        "",
        f"Regenerate: `{REGENERATE}`",
        "",
        "| family | " + " | ".join(analyses) + " |",
        "|---" * (len(analyses) + 1) + "|",
    ]
    for family in FAMILIES:
        row = []
        for analysis in analyses:
            cell = cells[family, analysis]
            if cell.status == "ok":
                row.append("ok")
            elif cell.status in ("refused", "defect"):
                number = notes.setdefault((cell.status, cell.pattern), len(notes) + 1)
                texts.setdefault(
                    number, f"{cell.status}: {_reason(cell.message)} (seen on {family})"
                )
                row.append(f"{cell.status} [{number}]")
            else:
                row.append(f"**{cell.status}**")
        lines.append(f"| {family} | " + " | ".join(row) + " |")
    lines += [
        "",
        "Notes: the message of the first cell in the table with that reason (the other families",
        "name themselves in the same message). Refusals are documented limits; defects are",
        "known bugs being fixed.",
        "",
    ]
    lines += [f"{number}. {text}" for number, text in texts.items()]
    return "\n".join(lines) + "\n"


def _reason(message: str) -> str:
    """A note's text: the message without the model's name (a tmp folder) or measured errors."""
    text = re.sub(r"(?<![\w.])/(?:[^\s/']+/)+[^\s/']+", "<model>", message)  # its folder
    text = re.sub(r"\s*\((?:max )?error [^)]*\)", "", text)
    return text if len(text) <= 240 else text[:237] + "..."


def failures(cells: dict[tuple[str, str], Cell]) -> list[str]:
    """One line per failing cell."""
    return [
        f"{c.family} x {c.analysis}: {c.status}: {c.message}"
        for c in cells.values()
        if not c.passed
    ]
