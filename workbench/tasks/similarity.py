"""An encoder task for sentence embedders such as MiniLM: keep a sentence's meaning.

Each clean prompt mentions a noun X ("i saw a dog near the river today ."); its target is the
embedding of a paraphrase that mentions the same noun ("today i noticed a dog by the river .");
the corrupted prompt swaps X for a noun of another category ("... a piano near the river ...").
The metric is the cosine similarity between the prompt's sentence embedding (mean-pooled final
hidden state, as sentence-transformers pools all-MiniLM-L6-v2) and the target embedding.

Never uses the bridge's MLM logits: MiniLM ships no MLM head weights (see NOTES-TL4).
All nouns and places are single WordPiece tokens, so clean and corrupted prompts align.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from workbench.tasks.base import Task

if TYPE_CHECKING:
    from workbench.model import Model

CATEGORIES = {
    "animal": [
        "cat",
        "dog",
        "horse",
        "bird",
        "fish",
        "cow",
        "sheep",
        "lion",
        "tiger",
        "bear",
        "rabbit",
        "mouse",
    ],
    "vehicle": ["car", "truck", "bus", "train", "plane", "boat", "bike"],
    "instrument": ["piano", "guitar", "violin", "drum"],
    "food": ["pizza", "bread", "apple", "cake", "coffee", "tea"],
}
PLACES = [
    "kitchen",
    "garden",
    "beach",
    "forest",
    "office",
    "school",
    "church",
    "hospital",
    "river",
    "mountain",
]
PARAPHRASES = (
    ("the {X} is in the {P} .", "there is a {X} inside the {P} ."),
    ("i saw a {X} near the {P} today .", "today i noticed a {X} by the {P} ."),
    ("my friend bought a {X} yesterday .", "yesterday my friend purchased a {X} ."),
    ("we talked about the {X} for hours .", "for hours we discussed the {X} ."),
    ("a {X} appeared in the {P} .", "in the {P} a {X} showed up ."),
    ("she likes the {X} very much .", "she really enjoys the {X} ."),
)


@dataclass(frozen=True, eq=False)
class SimilarityTask(Task):
    """Metric = cos(sentence embedding of the prompt, embedding of the clean paraphrase)."""

    pool_mask: torch.Tensor  # [batch, pos] 1 for real tokens (same for clean and corrupted)
    target_embeddings: torch.Tensor  # [batch, d_model] unit vectors

    def metric(self, output: torch.Tensor) -> torch.Tensor:
        mask = self.pool_mask.to(output.device)[..., None].to(output.dtype)  # [batch, pos, 1]
        pooled = (output * mask).sum(1) / mask.sum(1).clamp_min(1)  # [batch, d_model]
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return (pooled * self.target_embeddings.to(output.device)).sum(-1)  # [batch]


def similarity_prompts(n: int, *, seed: int = 0) -> list[tuple[str, str, str]]:
    """`n` (clean, corrupted, paraphrase) triples."""
    if n < 1:
        raise ValueError(f"n: need at least one prompt, got {n}")
    rng = random.Random(seed)
    triples = []
    for _ in range(n):
        cat, other = rng.sample(sorted(CATEGORIES), 2)
        x, y, place = rng.choice(CATEGORIES[cat]), rng.choice(CATEGORIES[other]), rng.choice(PLACES)
        clean, para = rng.choice(PARAPHRASES)
        triples.append(
            (clean.format(X=x, P=place), clean.format(X=y, P=place), para.format(X=x, P=place))
        )
    return triples


@torch.no_grad()
def make_similarity_task(model: Model, *, n: int = 32, seed: int = 0) -> SimilarityTask:
    """`n` paraphrase-similarity pairs for an encoder."""
    if model.is_causal:
        raise ValueError(f"task: similarity needs an encoder; {model.name} is a decoder")
    triples = similarity_prompts(n, seed=seed)
    clean = model.to_tokens([c for c, _, _ in triples])  # [batch, pos]
    corrupted = model.to_tokens([k for _, k, _ in triples])  # [batch, pos]
    targets = model.sentence_embedding([p for _, _, p in triples])  # [batch, d_model]
    return SimilarityTask(
        name="similarity",
        model_name=model.name,
        clean_tokens=clean.cpu(),
        corrupted_tokens=corrupted.cpu(),
        clean_text=tuple(c for c, _, _ in triples),
        corrupted_text=tuple(k for _, k, _ in triples),
        readout=f"blocks.{model.n_layers - 1}.hook_out",
        metric_name="cosine_to_paraphrase",
        pool_mask=model.attention_mask(clean).cpu(),
        target_embeddings=targets.cpu(),
    )


@torch.no_grad()
def similarity_metrics(model: Model, *, n: int = 200, seed: int = 12345) -> dict:
    """Card metrics: how reliably the embedding keeps the clean noun's meaning."""
    task = make_similarity_task(model, n=n, seed=seed)
    clean = task.evaluate(model)
    corrupted = task.evaluate(model, corrupted=True)
    return {
        "similarity_heldout_prompts": n,
        "similarity_accuracy": round((clean > corrupted).float().mean().item(), 4),
        "similarity_clean_cosine": round(clean.mean().item(), 4),
        "similarity_corrupted_cosine": round(corrupted.mean().item(), 4),
    }
