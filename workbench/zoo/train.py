"""Train the zoo decoders: `python -m workbench.zoo.train {tiny-ioi,tiny-induction}`.

Each recipe is seeded and deterministic on the same machine type (CPU, same thread count):
it builds a tokenizer, trains a GPT-2-architecture model with AdamW, saves a few intermediate
snapshots (float16, under `history/`) for training-dynamics views, writes the final
checkpoint as safetensors + tokenizer, then measures the task metrics on held-out data through
`workbench.load_model` (the same path users and tests take) and writes the model card.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from workbench.tasks.ioi_prompts import generate_ioi_prompts, ioi_vocabulary
from workbench.zoo import CHECKPOINT_DIR
from workbench.zoo import corpus as corpus_lib
from workbench.zoo.evaluate import evaluate_zoo_model
from workbench.zoo.tokenizers import bpe_tokenizer, word_level_tokenizer


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained zoo model."""

    name: str
    n_layer: int
    n_head: int
    n_embd: int
    n_positions: int
    steps: int
    batch: int
    lr: float
    seed: int = 0
    warmup: int = 100
    weight_decay: float = 0.01
    snapshots: tuple[int, ...] = ()
    answer_weight: float = 0.0  # extra loss weight on each sequence's last token (the answer)
    architecture: str = "gpt2"  # "gpt2" (learned positions) or "llama" (RoPE, RMSNorm, GQA)
    n_kv_head: int = 0  # key/value heads for "llama" (0: as many as query heads)
    vocab_size: int = 0  # BPE vocabulary (0: word-level tokenizer)
    seq_len: int = 128  # training context for text / repeated sequences
    repeat_share: float = 0.5  # share of each batch that is repeated sequences
    repeat_source: str = "random"  # repeated chunks of "random" tokens or of real "text"
    period: tuple[int, int] = (4, 64)  # min/max length of the repeated chunk


RECIPES = {
    "tiny-ioi": Recipe(
        "tiny-ioi",
        n_layer=2,
        n_head=4,
        n_embd=128,
        n_positions=128,
        steps=3000,
        batch=64,
        lr=2e-3,
        snapshots=(100, 300, 1000, 3000),
        answer_weight=1.0,
    ),
    "tiny-induction": Recipe(
        "tiny-induction",
        architecture="llama",
        n_layer=2,
        n_head=8,
        n_kv_head=4,
        n_embd=128,
        n_positions=64,
        steps=4000,
        batch=16,
        lr=2e-3,
        snapshots=(200, 600, 1500, 4000),
        vocab_size=2048,
        seq_len=64,
        repeat_share=0.5,
        repeat_source="random",
        period=(8, 30),
    ),
}


def _ioi_batches(recipe: Recipe, tokenizer) -> Callable[[int], torch.Tensor]:
    prompts = generate_ioi_prompts(recipe.steps * recipe.batch, seed=recipe.seed + 1000)
    pad = tokenizer.pad_token_id
    bos = tokenizer.bos_token_id

    def batch(step: int) -> torch.Tensor:
        chunk = prompts[step * recipe.batch : (step + 1) * recipe.batch]
        rows = [
            [bos, *tokenizer.encode(f"{p.text} {p.io}", add_special_tokens=False)] for p in chunk
        ]
        width = max(map(len, rows))
        return torch.tensor([r + [pad] * (width - len(r)) for r in rows])  # [batch, pos]

    return batch


def _induction_batches(recipe: Recipe, tokenizer) -> Callable[[int], torch.Tensor]:
    train_texts, _ = corpus_lib.stdlib_texts()
    stream = corpus_lib.token_stream(tokenizer, train_texts)
    gen = torch.Generator().manual_seed(recipe.seed + 1000)
    bos, length = tokenizer.bos_token_id, recipe.seq_len
    n_repeated = round(recipe.batch * recipe.repeat_share)
    source = stream if recipe.repeat_source == "text" else None

    def batch(step: int) -> torch.Tensor:
        text = corpus_lib.text_windows(
            stream, batch=recipe.batch - n_repeated, length=length, bos=bos, gen=gen
        )
        rep = corpus_lib.repeated_sequences(
            batch=n_repeated,
            length=length,
            vocab=len(tokenizer),
            n_special=3,
            bos=bos,
            gen=gen,
            period=recipe.period,
            source=source,
        )
        return torch.cat([text, rep])  # [batch, seq_len]

    return batch


def build_model(recipe: Recipe, tokenizer) -> torch.nn.Module:
    """A freshly initialised model for the recipe (seeded by the caller)."""
    special = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.bos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if recipe.architecture == "llama":
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=recipe.n_embd,
            intermediate_size=4 * recipe.n_embd,
            num_hidden_layers=recipe.n_layer,
            num_attention_heads=recipe.n_head,
            num_key_value_heads=recipe.n_kv_head or recipe.n_head,
            max_position_embeddings=recipe.n_positions,
            tie_word_embeddings=True,
            **special,
        )
        return LlamaForCausalLM(config)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=recipe.n_positions,
        n_embd=recipe.n_embd,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        **special,
    )
    return GPT2LMHeadModel(config)


def _loss(model, tokens: torch.Tensor, pad: int, *, answer_weight: float) -> torch.Tensor:
    """Mean next-token loss over real tokens, plus `answer_weight` x the last token's loss."""
    real = tokens != pad  # [batch, pos]
    logits = model(input_ids=tokens, attention_mask=real.long()).logits  # [batch, pos, vocab]
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none"
    )  # [batch, pos-1]
    mask = real[:, 1:].float()  # [batch, pos-1]
    loss = (nll * mask).sum() / mask.sum()
    if answer_weight:
        last = real.sum(1) - 2  # [batch] position predicting the last real token
        loss = loss + answer_weight * nll[torch.arange(len(tokens)), last].mean()
    return loss


def _snapshot_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters as float16 (tied ones under each name), without buffers.

    Older transformers registered GPT-2's causal mask as a persistent buffer `attn.bias`
    (and `attn.masked_bias`); a name filter on "attn.bias" would also drop the real
    `attn.c_attn.bias`, so buffers are dropped by identity instead.
    """
    buffers = {name for name, _ in model.named_buffers()}
    return {
        k: v.detach().half().contiguous() for k, v in model.state_dict().items() if k not in buffers
    }


def build_tokenizer(recipe: Recipe):
    if not recipe.vocab_size:
        return word_level_tokenizer(ioi_vocabulary())
    train_texts, _ = corpus_lib.stdlib_texts()
    return bpe_tokenizer(train_texts, vocab_size=recipe.vocab_size)


def train(
    name: str,
    *,
    out_dir: Path | None = None,
    steps: int | None = None,
    overrides: dict | None = None,
) -> dict:
    """Train recipe `name` (fields optionally overridden), write the checkpoint folder and its
    card; return the card."""
    if name not in RECIPES:
        raise ValueError(f"model: no training recipe for {name!r}; choose from {list(RECIPES)}")
    recipe = RECIPES[name]
    if overrides:
        fields = asdict(recipe)
        unknown = set(overrides) - set(fields)
        if unknown:
            raise ValueError(f"--set: unknown recipe field(s) {sorted(unknown)}")
        recipe = Recipe(**{**fields, **overrides})
    if steps is not None:
        recipe = Recipe(
            **{
                **asdict(recipe),
                "steps": steps,
                "snapshots": tuple(s for s in recipe.snapshots if s < steps) + (steps,),
            }
        )
    out_dir = Path(out_dir or CHECKPOINT_DIR / name)
    torch.manual_seed(recipe.seed)
    tokenizer = build_tokenizer(recipe)
    model = build_model(recipe, tokenizer)
    make_batch = (_ioi_batches if name == "tiny-ioi" else _induction_batches)(recipe, tokenizer)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / recipe.warmup) * max(0.05, 1 - s / recipe.steps)
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "history").mkdir(parents=True)
    started, losses = time.perf_counter(), []
    model.train()
    for step in tqdm(range(recipe.steps), desc=f"train {name}", file=sys.stderr, mininterval=5):
        tokens = make_batch(step)  # [batch, pos]
        loss = _loss(model, tokens, tokenizer.pad_token_id, answer_weight=recipe.answer_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step + 1 in recipe.snapshots:
            state = _snapshot_state(model)
            save_file(state, str(out_dir / "history" / f"step-{step + 1:06d}.safetensors"))
    wall = time.perf_counter() - started
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    card = {
        "name": name,
        "architecture": type(model).__name__,
        "recipe": asdict(recipe),
        "training": {
            "steps": recipe.steps,
            "wall_seconds": round(wall, 1),
            "final_train_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
            "python": platform.python_version(),
        },
        "history": sorted(p.name for p in (out_dir / "history").iterdir()),
    }
    card["metrics"] = evaluate_zoo_model(name, out_dir)
    (out_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out_dir / "README.md").write_text(model_card_markdown(card))
    return card


def model_card_markdown(card: dict) -> str:
    """A human-readable model card."""
    lines = [
        f"# {card['name']}",
        "",
        f"Architecture: {card['architecture']}",
        "",
        "## Recipe",
        "",
        "```json",
        json.dumps(card["recipe"], indent=2),
        "```",
        "",
        "## Training",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in card["training"].items()]
    lines += ["", "## Held-out metrics", ""]
    lines += [f"- {k}: {v}" for k, v in card["metrics"].items()]
    lines += ["", f"Reproduce: `python -m workbench.zoo.train {card['name']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument(
        "--out", type=Path, default=None, help="checkpoint folder (default: the zoo)"
    )
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=JSON",
        help="override recipe fields, e.g. --set lr=1e-3 period=[8,30]",
    )
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        parsed = json.loads(value)
        overrides[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    card = train(args.name, out_dir=args.out, steps=args.steps, overrides=overrides)
    print(json.dumps(card["metrics"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
