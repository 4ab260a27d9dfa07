"""The TIGER generative-retrieval family: `trie` (valid semantic-ID tuples and the constrained
beam search), `net` (the encoder-decoder), `model` (the retriever: fit, decode, persist)."""

from shelflab.models.tiger.model import TigerRetriever

__all__ = ["TigerRetriever"]
