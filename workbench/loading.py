"""`load_model`: one entry point for zoo names, local checkpoint folders and hub ids.

Resolution order: a bundled zoo name, then an existing local folder, then a hub id. Hub ids
only work where the network reaches the hub; offline (or with `HF_HUB_OFFLINE=1`) they fail
fast with one `ValueError` naming the id instead of a chain of retries.

Safety: remote code from a checkpoint is never run unless `trust_remote_code=True` is passed
explicitly, and weights are read from safetensors only, by transformers' own loader. A local
folder or hub repository whose weights are pickles (`pytorch_model.bin`, `*.pt`, `*.pth`,
`*.ckpt`, `*.pkl`), with no `model.safetensors` (or sharded `model.safetensors.index.json`)
beside them, is refused before anything is read: unpickling can run code. Convert such a
checkpoint first (`model.save_pretrained(folder, safe_serialization=True)` where it is trusted).

Errors: every bad folder (no config.json, a config.json that is not a JSON object, no weights,
pickle weights, a corrupt safetensors file, weights that do not fit the config, a missing
tokenizer) is one `ValueError` naming the folder, with the loader's own reason on one line. An
architecture the bridge has no adapter for names the head to save it with when the family has
one (a bare `RobertaModel`: save it as `RobertaForMaskedLM`). Hub ids go through the same
loader and errors as local folders.

Big models: `device_map=` / `n_devices=` go to TransformerLens 4's `boot_transformers`, which
hands them to accelerate (see docs/scale-out.md for what works under a split). Only the
argument combinations are checked here; TransformerLens refuses mixed CPU/disk + GPU maps.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from workbench.model import Model
from workbench.zoo import ZOO

_ENCODER_ARCHITECTURES = ("Bert", "Roberta", "Electra", "DistilBert", "MPNet", "XLMRoberta")


def load_model(
    name_or_path: str | os.PathLike,
    *,
    device: str | None = None,
    device_map: str | dict[str, str | int] | None = None,
    n_devices: int | None = None,
    trust_remote_code: bool = False,
) -> Model:
    """Load a model as a `Model` on TransformerLens 4's `TransformerBridge`.

    Args:
        name_or_path: a zoo name (`minilm`, `tiny-ioi`, `tiny-induction`), a local
            HuggingFace checkpoint folder, or a hub id such as `gpt2`.
        device: torch device ("cpu", "cuda", ...); default: CPU.
        device_map: a HuggingFace device map ("auto", "balanced", "sequential", a device
            such as "cpu", or a dict of module name -> device) to split or offload a model that
            does not fit one device. Not together with `device` or `n_devices`.
        n_devices: split the model over this many CUDA devices (TransformerLens translates it
            to a balanced device map). Not together with `device` (unless 1) or `device_map`.
        trust_remote_code: allow a checkpoint's own Python code to run (off by default).

    Raises:
        ValueError: unknown name, a folder that is not a loadable safetensors checkpoint
            (pickle weights are refused), or a hub id that cannot be fetched (offline).

    Example:
        >>> model = load_model("tiny-ioi")
        >>> model.n_layers, model.n_heads
        (2, 4)
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise ValueError("model: expected a zoo name, a checkpoint folder or a hub id")
    name = str(name_or_path)
    _check_device(device)
    placement = _check_placement(device, device_map, n_devices)
    if name in ZOO:
        entry = ZOO[name]
        if not entry.is_available():
            raise ValueError(
                f"model: zoo model {name!r} has no checkpoint at {entry.path()}; "
                f"train it with `python -m workbench.zoo.train {name}`"
            )
        bridge = _boot(str(entry.path()), device=device, trust_remote_code=False, **placement)
        return Model(
            bridge, name, "zoo", entry.is_causal, card=entry.card(), path=str(entry.path())
        )

    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        return _load_local(
            path, name, device=device, trust_remote_code=trust_remote_code, **placement
        )
    return _load_hub(name, device=device, trust_remote_code=trust_remote_code, **placement)


def _load_local(
    path: Path, name: str, *, device: str | None, trust_remote_code: bool, **placement: Any
) -> Model:
    if not path.is_dir():
        raise ValueError(f"model: no checkpoint folder at {name!r}")
    _check_config(path / "config.json", name)
    check_weight_files((p.name for p in path.iterdir()), f"the folder {name!r}")
    bridge = _boot_or_refuse(
        str(path),
        f"cannot load the folder {name!r}",
        device=device,
        trust_remote_code=trust_remote_code,
        **placement,
    )
    return Model(bridge, name, "local", _is_causal(bridge), path=str(path.resolve()))


def _boot_or_refuse(source: str, failure: str, **kwargs: Any) -> Any:
    """`_boot(source)`, the one loader of local folders and hub ids; any loader failure is one
    `ValueError` "model: {failure}: {reason}" (reason: the loader's first line, or a plain
    explanation of the common ones)."""
    try:
        return _boot(source, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, _safetensors_error()) as err:
        reason = first_line(err)
        if "mismatched_sizes" in reason:
            reason = "the weights' shapes do not match config.json"
        elif reason.startswith("Could not determine supported architecture"):
            reason = _unsupported_architecture(reason)
        raise ValueError(f"model: {failure}: {reason}") from err


_HEAD_SUFFIXES = (
    "ForSequenceClassification",
    "ForTokenClassification",
    "ForQuestionAnswering",
    "ForMultipleChoice",
    "ForMaskedLM",
    "ForCausalLM",
    "LMHeadModel",
    "Model",
)
_LOADABLE_HEADS = ("ForMaskedLM", "ForCausalLM", "LMHeadModel")


def _unsupported_architecture(message: str) -> str:
    """One line for TransformerLens' "Could not determine supported architecture" error: the
    architecture, and the fix when the same family loads with another head (a bare
    `RobertaModel` or a classifier: save it as `RobertaForMaskedLM`)."""
    from transformer_lens.factories.architecture_adapter_factory import SUPPORTED_ARCHITECTURES

    found = re.search(r"Config architectures: \[([^\]]*)\]", message)
    names = re.findall(r"'([^']+)'", found.group(1)) if found else []
    model_type = re.search(r"Model type: (\S+)", message)
    arch = names[0] if names else (model_type.group(1) if model_type else "this architecture")
    text = f"TransformerLens 4's bridge has no adapter for {arch}"
    prefix = next((arch[: -len(s)] for s in _HEAD_SUFFIXES if arch.endswith(s)), "")
    siblings = [prefix + h for h in _LOADABLE_HEADS if prefix + h in SUPPORTED_ARCHITECTURES]
    if prefix and siblings:
        fix = siblings[0]
        return (
            f"{text}; save the checkpoint as {fix}, which it loads "
            f"(`{fix}.from_pretrained(folder).save_pretrained(folder)`)"
        )
    return f"{text} (supported: transformer_lens' SUPPORTED_ARCHITECTURES)"


_SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def check_weight_files(files: Iterable[str], where: str) -> None:
    """Refuse a checkpoint (its top-level file names) without safetensors weights.

    ValueError: pickle weights only ("not safetensors; refused"), or no weights at all.
    """
    names = {name for name in files if "/" not in name}
    if any(name in names for name in _SAFETENSORS_FILES):
        return
    pickles = sorted(
        n for n in names if n.endswith(_PICKLE_SUFFIXES) or n == "pytorch_model.bin.index.json"
    )
    if pickles:
        raise ValueError(
            f"model: {where} holds a pickle checkpoint ({pickles[0]}), not safetensors; "
            "pickle checkpoints are refused (loading one can run code): convert it to "
            "model.safetensors"
        )
    raise ValueError(f"model: {where} has no weights (no model.safetensors)")


def _check_config(config: Path, name: str) -> None:
    """A readable config.json holding a JSON object, else ValueError."""
    if not config.is_file():
        raise ValueError(f"model: {name!r} is not a HuggingFace checkpoint (no config.json)")
    try:
        data = json.loads(config.read_bytes())
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(
            f"model: the config.json of {name!r} is not valid JSON ({first_line(err)})"
        ) from err
    if not isinstance(data, dict):
        raise ValueError(
            f"model: the config.json of {name!r} is not a HuggingFace config (not a JSON object)"
        )


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's text (with the next when it ends in ':')."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]


def _safetensors_error() -> type[Exception]:
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors ships with transformers
        return OSError
    return SafetensorError


def _load_hub(name: str, *, device: str | None, trust_remote_code: bool, **placement: Any) -> Model:
    if name.count("/") > 1 or any(c.isspace() for c in name):
        raise ValueError(f"model: {name!r} is neither a zoo name, a local folder nor a hub id")
    reason = _hub_unreachable_reason()
    if reason:
        raise ValueError(
            f"model: cannot fetch hub model {name!r}: {reason}. "
            f"Zoo models: {', '.join(ZOO)}; or pass a local checkpoint folder."
        )
    check_weight_files(_hub_files(name), f"the hub repository {name!r}")
    bridge = _boot_or_refuse(
        name,
        f"cannot fetch hub model {name!r}",
        device=device,
        trust_remote_code=trust_remote_code,
        **placement,
    )
    return Model(bridge, name, "hub", _is_causal(bridge))


def _hub_files(name: str) -> list[str]:
    """The file names of a hub repository (to refuse pickle-only weights before downloading)."""
    from huggingface_hub import list_repo_files

    try:
        return list_repo_files(name)
    except Exception as err:  # any hub failure is "cannot fetch", on one line
        raise ValueError(f"model: cannot fetch hub model {name!r}: {first_line(err)}") from err


def _hub_unreachable_reason() -> str | None:
    """Why the hub cannot be reached, or None. Checked before transformers' slow retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "offline mode (HF_HUB_OFFLINE is set)"
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return f"the hub host {host} cannot be resolved (no network)"
    return None


def _check_device(device: str | None) -> None:
    """Refuse a device this machine does not have, before any loading work."""
    if device is None:
        return
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device: {device!r} is not a torch device") from err
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} requested but no CUDA device is available")


def _check_placement(
    device: str | None, device_map: str | dict[str, str | int] | None, n_devices: int | None
) -> dict[str, Any]:
    """Validate `device_map` / `n_devices` (before any loading) -> extra `_boot` kwargs."""
    if n_devices is not None:
        if not isinstance(n_devices, int) or isinstance(n_devices, bool) or n_devices < 1:
            raise ValueError(f"n_devices: expected a positive integer, got {n_devices!r}")
        if device_map is not None:
            raise ValueError("n_devices: pass either n_devices or device_map, not both")
        if n_devices > 1:
            import torch

            if device is not None:
                raise ValueError("n_devices: a split over devices cannot also take device=")
            available = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if available < n_devices:
                raise ValueError(
                    f"n_devices: {n_devices} CUDA devices requested, {available} available"
                )
    if device_map is not None:
        if device is not None:
            raise ValueError("device_map: pass either device or device_map, not both")
        is_map = isinstance(device_map, dict) and all(
            isinstance(k, str) and isinstance(v, str | int) and not isinstance(v, bool)
            for k, v in device_map.items()
        )
        if not (isinstance(device_map, str) and device_map.strip()) and not (is_map and device_map):
            raise ValueError(
                f"device_map: expected 'auto', 'balanced', a device or a dict of module -> "
                f"device, got {device_map!r}"
            )
        import torch

        targets = list(device_map.values()) if isinstance(device_map, dict) else [device_map]
        wants_cuda = any(isinstance(t, int) or str(t).startswith("cuda") for t in targets)
        if wants_cuda and not torch.cuda.is_available():
            raise ValueError(f"device_map: {device_map!r} needs CUDA, which is not available")
    placement = {"device_map": device_map, "n_devices": n_devices}
    return {key: value for key, value in placement.items() if value is not None}


def _boot(path_or_id: str, *, device: str | None, trust_remote_code: bool, **placement: Any) -> Any:
    from transformer_lens.model_bridge import TransformerBridge

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, **placement}
    if device is not None:
        kwargs["device"] = device
    started = time.perf_counter()
    bridge = TransformerBridge.boot_transformers(path_or_id, **kwargs)
    bridge.eval()
    bridge.load_seconds = time.perf_counter() - started
    return bridge


def _is_causal(bridge: Any) -> bool:
    arch = type(bridge.original_model).__name__
    if any(arch.startswith(prefix) for prefix in _ENCODER_ARCHITECTURES):
        return False
    return not bool(getattr(bridge.original_model.config, "is_encoder_decoder", False))
