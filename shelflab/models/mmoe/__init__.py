"""The MMoE multi-task reranker family: `net` (the network), `features` (candidates and pair
features), `model` (the retriever: fit, serve, persist)."""

from shelflab.models.mmoe.model import MMoERetriever

__all__ = ["MMoERetriever"]
