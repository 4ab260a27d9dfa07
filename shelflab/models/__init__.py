"""The model zoo: one `Retriever` interface, families registered by name.

Light to import (no torch / sentence-transformers / chromadb / bm25s until a model needs
them), so `shelflab --help` stays fast.
"""

from shelflab.models.base import MODEL_FILE, ModelContext, Retriever, TrainData
from shelflab.models.registry import FAMILIES, create, load, open_model, register, validate_spec

__all__ = [
    "FAMILIES",
    "MODEL_FILE",
    "ModelContext",
    "Retriever",
    "TrainData",
    "create",
    "load",
    "open_model",
    "register",
    "validate_spec",
]
