"""Write the planted-circuit checkpoints: weights, tokenizer, model card.

`build(name, out_dir)` compiles the spec (`workbench.zoo.planted.designs.SPECS`), saves it with
`save_pretrained` (safetensors), saves the word-level tokenizer, then loads the folder back
through `workbench.load_model` (the path users take) to measure the task and write
`card.json` (true edges in the graph's own labels, distractors, head roles, metrics).

The proof that the listed edges are the circuit (faithfulness, ablation) needs edge patching,
which lives above this layer (`circuits`); it is in tests/integration/zoo/test_planted.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from workbench.zoo.planted.compile import gpt2_model
from workbench.zoo.planted.compile_llama import llama_model
from workbench.zoo.planted.designs import SPECS, VOCAB
from workbench.zoo.planted.spec import CONST, Spec
from workbench.zoo.tokenizers import wrap_tokenizer

if TYPE_CHECKING:
    from workbench.model import Model

BUILD_COMMAND = "python -m workbench.zoo.planted build"
ARCHITECTURES = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}


def planted_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer over `VOCAB` (`<bos>` 0, `<pad>` 1, `<unk>` 2, `<sep>` 3)."""
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return wrap_tokenizer(tokenizer, sep_token="<sep>")


@torch.no_grad()
def measure(spec: Spec, model: Model) -> dict:
    """Clean/corrupted task metric and top-1 accuracy of the loaded checkpoint (the card's
    metrics; `workbench.zoo.evaluate` re-measures them for the zoo tests)."""
    from workbench.tasks import make_task

    task = make_task(spec.task, model, n=64, seed=0)
    summary = task.summary(model)
    logits = model(task.clean_tokens)  # [batch, pos, d_vocab]
    if spec.task == "lookup":
        predicted = logits[:, -1].argmax(-1)  # [batch]
        targets = task.answers  # [batch]
    else:  # induction: the second copy
        pos = task.positions()  # [seq_len - 1]
        predicted = logits[:, pos].argmax(-1)  # [batch, seq_len - 1]
        targets = task.clean_tokens[:, pos + 1]  # [batch, seq_len - 1]
    return {
        "task": spec.task,
        "n_prompts": task.n_prompts,
        "metric": task.metric_name,
        "clean_metric": round(summary["clean"], 4),
        "corrupted_metric": round(summary["corrupted"], 4),
        "gap": round(summary["gap"], 4),
        "top1_accuracy": round((predicted == targets).double().mean().item(), 4),
    }


def compile_model(spec: Spec) -> torch.nn.Module:
    """The transformers model of `spec` in its architecture (GPT-2 or Llama)."""
    build_fn = llama_model if spec.architecture == "llama" else gpt2_model
    return build_fn(spec, len(VOCAB))


def card(spec: Spec, metrics: dict) -> dict:
    return {
        "name": spec.name,
        "architecture": ARCHITECTURES[spec.architecture],
        "planted": True,
        "task": spec.task,
        "true_edges": list(spec.true_edges),
        "distractors": list(spec.distractors),
        "heads": {f"L{h.layer}H{h.head}": h.role for h in spec.heads},
        "mlps": {f"MLP{m.layer}": f"distractor ({m.in_block} -> {m.out_block})" for m in spec.mlps},
        "notes": spec.notes,
        "construction": {
            "built_by": BUILD_COMMAND,
            "n_layers": spec.n_layers,
            "n_heads": spec.n_heads,
            "d_head": spec.d_head,
            "d_model": spec.d_model,
            "d_mlp": spec.d_mlp,
            "n_ctx": spec.n_ctx,
            "layout": dict(spec.layout.blocks),
            "const": CONST,
            "unembed_block": spec.unembed_block,
            "unembed_scale": spec.unembed_scale,
            **({"rope_theta": spec.rope_theta} if spec.architecture == "llama" else {}),
        },
        "ground_truth": (
            "true_edges are the edges that carry the clean->corrupted difference of the task: "
            "with every other edge patched to the corrupted run the task is intact "
            "(faithfulness within 1e-3 of 1), with them patched it is gone; see "
            "tests/integration/zoo/test_planted.py"
        ),
        "metrics": metrics,
    }


def build(name: str, out_dir: Path) -> dict:
    """Compile spec `name` into `out_dir`; return its card."""
    spec = SPECS[name]
    out_dir.mkdir(parents=True, exist_ok=True)
    model = compile_model(spec)
    model.save_pretrained(out_dir)
    planted_tokenizer().save_pretrained(out_dir)
    from workbench.loading import load_model

    result = card(spec, measure(spec, load_model(str(out_dir))))
    (out_dir / "card.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "README.md").write_text(readme(result))
    return result


def readme(result: dict) -> str:
    lines = [
        f"# {result['name']}",
        "",
        f"A planted-circuit model (weights set by construction, not trained) for the task "
        f"`{result['task']}`.",
        "",
        "True edges (graph labels):",
        "",
        *[f"- `{edge}`" for edge in result["true_edges"]],
        "",
        "Heads:",
        "",
        *[f"- {head}: {role}" for head, role in result["heads"].items()],
        "",
        "Metrics:",
        "",
        *[f"- {k}: {v}" for k, v in result["metrics"].items()],
        "",
        f"Reproduce: `{BUILD_COMMAND}`",
        "",
    ]
    return "\n".join(lines)
