"""`Model`: the one handle every analysis receives.

A thin, explicit wrapper around a TransformerLens 4 `TransformerBridge`. It adds what the
bridge leaves to the caller:

- dimensions under stable names (`n_layers`, `n_heads`, `d_head`, `d_model`, `n_ctx`, ...);
- tokenisation that refuses bad input (empty prompts, prompts longer than the context, text
  that is not valid Unicode, anything but `str` / a list of `str`) with a `ValueError` instead
  of silently truncating or failing inside the tokenizer;
- a character cap checked before tokenising: a prompt longer than `prompt_char_limit`
  characters (`max(MAX_PROMPT_CHARS, CHARS_PER_TOKEN_BOUND * n_ctx)`, 200,000 characters for
  every zoo model) is refused at once, so a 20 MB prompt costs milliseconds, not a
  tokenisation of the whole text before the "longer than the context" error;
- `run_with_cache(input, names=...)`, which caches only the hooks asked for;
- `intervene(hooks)`, a context manager whose hooks are always removed on exit, also when the
  body raises, so a shared model never keeps stray hooks.

Caveats: numerics are the raw HuggingFace ones (no layer-norm folding). For encoders the
bridge's "logits" come from an MLM head that the MiniLM checkpoint does not ship (randomly
initialised); use `hidden_states` / `sentence_embedding` for encoder metrics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from workbench.heads import Head

MAX_PROMPT_CHARS = 200_000
"""Characters a prompt may have whatever the model (about 50,000 tokens of English): checked
before tokenising. Models with a longer context get `CHARS_PER_TOKEN_BOUND * n_ctx`."""
CHARS_PER_TOKEN_BOUND = 16
"""Characters per token assumed for long-context models (English averages about 4)."""

HookFn = Callable[..., torch.Tensor | None]
HookSpec = Mapping[str, HookFn] | Iterable[tuple[str, HookFn]]
_NO_INDEX = object()  # `check_head(head)` given one value, not a (layer, head) pair


@dataclass(eq=False)
class Model:
    """A loaded transformer ready for analysis (see `workbench.load_model`).

    Attributes:
        bridge: the TransformerLens 4 `TransformerBridge` (hooks, caches, weights).
        name: the name it was loaded under (zoo name, folder path or hub id).
        source: "zoo", "local" or "hub".
        is_causal: True for decoders (causal attention), False for encoders.
        card: the model card (dict) for zoo models, else None.
    """

    bridge: Any
    name: str
    source: str
    is_causal: bool
    card: dict | None = None
    path: str | None = None
    _hook_names: frozenset[str] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        self.bridge.eval()
        self._hook_names = frozenset(self.bridge.hook_dict.keys())

    # ------------------------------------------------------------------ dimensions
    @property
    def cfg(self) -> Any:
        """The bridge's TransformerLens config."""
        return self.bridge.cfg

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks."""
        return int(self.cfg.n_layers)

    @property
    def n_heads(self) -> int:
        """Attention (query) heads per layer."""
        return int(self.cfg.n_heads)

    @property
    def n_key_value_heads(self) -> int:
        """Key/value heads (fewer than `n_heads` under grouped-query attention)."""
        return int(getattr(self.cfg, "n_key_value_heads", None) or self.n_heads)

    @property
    def d_head(self) -> int:
        """Dimension of each head's queries, keys and values."""
        return int(self.cfg.d_head)

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return int(self.cfg.d_model)

    @property
    def d_vocab(self) -> int:
        """Vocabulary size."""
        return int(self.cfg.d_vocab)

    @property
    def n_ctx(self) -> int:
        """Longest context (positions) the model takes."""
        return int(self.cfg.n_ctx)

    @property
    def tokenizer(self) -> Any:
        """The HuggingFace tokenizer."""
        return self.bridge.tokenizer

    @property
    def device(self) -> torch.device:
        """The device the weights are on."""
        return next(self.bridge.original_model.parameters()).device

    @property
    def hook_names(self) -> frozenset[str]:
        """Every hook point name the bridge exposes."""
        return self._hook_names

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (used by `workbench models --json` and the dashboard)."""
        return {
            "name": self.name,
            "source": self.source,
            "architecture": type(self.bridge.original_model).__name__,
            "is_causal": self.is_causal,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "n_key_value_heads": self.n_key_value_heads,
            "d_head": self.d_head,
            "d_model": self.d_model,
            "d_vocab": self.d_vocab,
            "n_ctx": self.n_ctx,
            "n_params": sum(p.numel() for p in self.bridge.original_model.parameters()),
            "metrics": (self.card or {}).get("metrics", {}),
            **{k: v for k, v in (self.card or {}).items() if k in ("task", "true_edges")},
        }

    # ------------------------------------------------------------------ tokens
    @property
    def prompt_char_limit(self) -> int:
        """Longest prompt, in characters, that `to_tokens` will tokenise (checked first)."""
        return max(MAX_PROMPT_CHARS, CHARS_PER_TOKEN_BOUND * self.n_ctx)

    def check_prompts(self, text: Any) -> list[str]:
        """`text` (one prompt or a list/tuple of prompts) as a list of prompts, or `ValueError`
        naming the problem: not text, bytes, invalid Unicode, empty, or too many characters."""
        if isinstance(text, str):
            texts = [text]
        elif isinstance(text, (bytes, bytearray, memoryview, Mapping)) or not isinstance(
            text, Iterable
        ):
            raise ValueError(f"prompt: {_not_text(text)}")
        else:
            texts = list(text)
        if not texts:
            raise ValueError("prompt: got an empty list of prompts")
        limit = self.prompt_char_limit
        for i, t in enumerate(texts):
            where = "" if isinstance(text, str) else f"item {i}: "
            if not isinstance(t, str):
                raise ValueError(f"prompt: {where}{_not_text(t, expected='a str')}")
            if len(t) > limit:
                raise ValueError(
                    f"prompt: {where}{len(t):,} characters is more than the "
                    f"{limit:,}-character limit for {self.name} (context {self.n_ctx} tokens)"
                )
            if not t.isascii():
                try:
                    t.encode("utf-8")
                except UnicodeEncodeError as err:
                    raise ValueError(
                        f"prompt: {where}contains bytes that are not valid UTF-8 "
                        f"(an unpaired surrogate at character {err.start})"
                    ) from None
            if not t.strip():
                raise ValueError("prompt: empty prompt (nothing to tokenise)")
        return texts

    def to_tokens(self, text: str | list[str], *, prepend_bos: bool | None = None) -> torch.Tensor:
        """Tokenise one prompt or a list of prompts -> `[batch, pos]` (right-padded).

        Raises `ValueError` for an empty prompt, one longer than the model's context, one
        over `prompt_char_limit` characters (before tokenising), bytes or invalid Unicode.
        """
        texts = self.check_prompts(text)
        tokens = self.bridge.to_tokens(
            texts, prepend_bos=prepend_bos, padding_side="right", truncate=False
        )  # [batch, pos]
        if tokens.shape[1] > self.n_ctx:
            raise ValueError(
                f"prompt: {tokens.shape[1]} tokens is longer than {self.name}'s context "
                f"of {self.n_ctx} tokens"
            )
        return tokens

    def to_str_tokens(self, text_or_tokens: str | torch.Tensor) -> list[str]:
        """Token strings of one prompt (or a 1-D / `[1, pos]` token tensor)."""
        if not isinstance(text_or_tokens, torch.Tensor):
            if isinstance(text_or_tokens, (list, tuple)):
                raise ValueError("prompt: to_str_tokens takes one prompt, got a list")
            text_or_tokens = self.to_tokens(text_or_tokens)  # ValueError for non-text
        if text_or_tokens.dim() > 1 and text_or_tokens.shape[0] != 1:
            raise ValueError("tokens: to_str_tokens takes one prompt, got a batch")
        return list(self.bridge.to_str_tokens(text_or_tokens.reshape(-1)))

    def attention_mask(self, tokens: torch.Tensor) -> torch.Tensor | None:
        """`[batch, pos]` mask of real tokens for encoders (None for decoders: right padding
        never reaches an earlier query under causal attention)."""
        if self.is_causal:
            return None
        pad = self.tokenizer.pad_token_id
        return None if pad is None else (tokens != pad).long()

    def _as_tokens(self, input: str | list[str] | torch.Tensor) -> torch.Tensor:
        if isinstance(input, torch.Tensor):
            if input.dim() == 1:
                input = input[None]
            if input.dim() != 2 or input.dtype not in (torch.int64, torch.int32):
                raise ValueError(
                    f"tokens: expected an integer [batch, pos] tensor, got {tuple(input.shape)} {input.dtype}"
                )
            return input.to(self.device)
        return self.to_tokens(input)

    # ------------------------------------------------------------------ running
    def forward(self, input: str | list[str] | torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Logits `[batch, pos, d_vocab]` for prompts or tokens."""
        tokens = self._as_tokens(input)
        return self.bridge(tokens, attention_mask=self.attention_mask(tokens), **kwargs)

    __call__ = forward

    def check_head(self, head: Any, index: Any = _NO_INDEX) -> Head:
        """The `Head` this model has, from `check_head("L1H2")`, `check_head((1, 2))` or
        `check_head(1, 2)`; `ValueError` naming the problem for anything else (bools,
        negatives, indices out of range)."""
        found = Head.parse(head) if index is _NO_INDEX else Head.of(head, index)
        return found.check(self.n_layers, self.n_heads, self.name)

    def check_hook_names(self, names: Iterable[str]) -> list[str]:
        """Return the names as a list, raising `ValueError` naming any unknown hook."""
        names = list(names)
        unknown = [n for n in names if n not in self._hook_names]
        if unknown:
            raise ValueError(f"hook: unknown hook name(s) {unknown} for model {self.name}")
        return names

    def run_with_cache(
        self,
        input: str | list[str] | torch.Tensor,
        *,
        names: Iterable[str] | Callable[[str], bool],
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One forward pass caching only `names` (a list of hook names or a predicate).

        Returns (logits, {hook_name: activation}).
        """
        tokens = self._as_tokens(input)
        names_filter = names if callable(names) else self.check_hook_names(names)
        out, cache = self.bridge.run_with_cache(
            tokens,
            names_filter=names_filter,
            attention_mask=self.attention_mask(tokens),
            **kwargs,
        )
        keys = names_filter if isinstance(names_filter, list) else list(cache.keys())
        return out, {k: cache[k] for k in keys}  # only what was asked (no alias duplicates)

    def hidden_states(self, input: str | list[str] | torch.Tensor) -> torch.Tensor:
        """Final residual stream `[batch, pos, d_model]` (for encoders: BertModel's output)."""
        name = f"blocks.{self.n_layers - 1}.hook_out"
        _, cache = self.run_with_cache(input, names=[name])
        return cache[name]

    def sentence_embedding(self, input: str | list[str] | torch.Tensor) -> torch.Tensor:
        """Mean-pooled, L2-normalised final hidden state `[batch, d_model]` (the
        sentence-transformers recipe for all-MiniLM-L6-v2)."""
        tokens = self._as_tokens(input)
        hidden = self.hidden_states(tokens)  # [batch, pos, d_model]
        mask = self.attention_mask(tokens)
        mask = torch.ones_like(tokens) if mask is None else mask
        mask = mask[..., None].to(hidden.dtype)  # [batch, pos, 1]
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)  # [batch, d_model]
        return torch.nn.functional.normalize(pooled, dim=-1)

    # ------------------------------------------------------------------ interventions
    @contextlib.contextmanager
    def intervene(self, hooks: HookSpec) -> Iterator[Model]:
        """Install forward hooks `fn(tensor, *, hook)` for the body of a `with` block.

        The hooks are removed on exit, also when the body raises::

            def zero_head(z, *, hook):
                z[:, :, 0] = 0.0
                return z

            with model.intervene({"blocks.0.attn.hook_z": zero_head}):
                logits = model("When Mary and John went to the store,")
        """
        pairs = list(hooks.items()) if isinstance(hooks, Mapping) else list(hooks)
        self.check_hook_names(name for name, _ in pairs)
        for name, fn in pairs:
            if not callable(fn):
                raise ValueError(f"hook: the function for {name} is not callable")
        with self.bridge.hooks(fwd_hooks=pairs, reset_hooks_end=True):
            yield self

    def active_hook_count(self) -> int:
        """Forward hooks currently installed on the bridge's hook points (aliases counted once;
        compare counts before and after an intervention)."""
        points = {id(hp): hp for hp in self.bridge.hook_dict.values()}
        return sum(len(hp.fwd_hooks) for hp in points.values())


def _not_text(value: Any, *, expected: str = "a str or a list of str") -> str:
    """Why `value` is not a prompt (bytes get the UTF-8 wording the CLI and dashboard show)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "contains bytes that are not valid UTF-8"
        return "got bytes, expected text (decode it as UTF-8 first)"
    return f"expected {expected}, got {type(value).__name__}"
