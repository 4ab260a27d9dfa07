"""Which torch device a model runs on."""

from __future__ import annotations

from shelflab.errors import ConfigError
from shelflab.timing import DEVICES


def resolve_device(requested: str | None = "auto", ctx_device: str | None = None) -> str:
    """`requested` (the model's `device` param) wins unless it is "auto"; then `ctx_device`
    (ModelContext.device) wins unless it is "auto" too; else CUDA when
    `torch.cuda.is_available()`, else CPU. Asking for CUDA on a machine without it is a
    ConfigError rather than a silent fallback."""
    choice = _choose(requested, ctx_device)
    DEVICES["torch"] = choice  # the stage's closing line says where its models ran
    return choice


def _choose(requested: str | None, ctx_device: str | None) -> str:
    import torch

    choice = requested or "auto"
    if choice == "auto" and ctx_device and ctx_device != "auto":
        choice = ctx_device
    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {choice!r} requested but torch.cuda.is_available() is False")
    return choice
