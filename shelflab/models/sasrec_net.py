"""The SASRec network (Kang & McAuley 2018): causal self-attention over the last `maxlen` items.

Item 0 is padding; catalog item i is embedding row i + 1. Pre-LN transformer blocks (torch's
`TransformerEncoderLayer(norm_first=True)`), learned positions, a final LayerNorm; the score of
item j after position t is h_t · e_j with the input embedding table shared as output (as in the
paper). `item_embeddings()` is the table the output uses, so a subclass can build item vectors
another way (e.g. from semantic-ID codes) and everything else stays.
"""

from __future__ import annotations

import torch
from torch import nn


class SASRecNet(nn.Module):
    def __init__(
        self, n_items: int, maxlen: int, dim: int, layers: int, heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.n_items, self.maxlen = n_items, maxlen
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.pos_emb = nn.Embedding(maxlen, dim)
        self.drop = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=dim, dropout=dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )  # fmt: skip
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)  # .layers
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.item_emb.weight, std=dim**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def item_embeddings(self) -> torch.Tensor:
        """(n_items + 1, dim): row 0 padding."""
        return self.item_emb.weight

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, L) item indices, left-padded with 0, L <= maxlen -> (B, L, dim) hidden states.

        A position attends to itself and the real items before it (causal + key padding mask;
        the diagonal keeps all-padding rows from attending to nothing, i.e. NaN), padding is
        zeroed after every block, and positions count back from the right end, so a batch cut
        to its longest sequence (L < maxlen) gives exactly the states of the full-width one."""
        width = seq.shape[1]
        keep = (seq != 0).unsqueeze(-1).to(self.pos_emb.weight.dtype)
        emb = self.item_embeddings()[seq] * self.pos_emb.embedding_dim**0.5
        positions = torch.arange(self.maxlen - width, self.maxlen, device=seq.device)
        x = self.drop(emb + self.pos_emb(positions)[None]) * keep
        mask = self._attention_mask(seq, x.dtype)
        for block in self.blocks.layers:
            x = block(x, src_mask=mask) * keep
        return self.norm(x)

    def _attention_mask(self, seq: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B * heads, L, L) additive mask: 0 where query i may read key j, -inf elsewhere."""
        width = seq.shape[1]
        causal = torch.ones(width, width, dtype=torch.bool, device=seq.device).tril()
        itself = torch.eye(width, dtype=torch.bool, device=seq.device)
        allowed = causal[None] & ((seq != 0)[:, None, :] | itself[None])
        mask = torch.zeros(allowed.shape, dtype=dtype, device=seq.device)
        mask = mask.masked_fill(~allowed, float("-inf"))
        return mask.repeat_interleave(self.blocks.layers[0].self_attn.num_heads, dim=0)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., dim) -> (..., n_items) scores of the catalog items (padding row dropped)."""
        return hidden @ self.item_embeddings()[1:].T

    def last_hidden(self, seq: torch.Tensor) -> torch.Tensor:
        """The state after the last (rightmost) position: the next-item query vector."""
        return self.encode(seq)[:, -1]


class SemanticSASRecNet(SASRecNet):
    """SASRec whose item vectors are built from semantic-ID codes: the sum of one learned
    embedding per level (and one for the collision index), optionally plus an ID embedding.
    Items that share codes share parameters, so rare items borrow from similar ones."""

    def __init__(
        self, codes, maxlen: int, dim: int, layers: int, heads: int, dropout: float,
        add_id: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(len(codes), maxlen, dim, layers, heads, dropout)
        codes = torch.as_tensor(codes, dtype=torch.long)
        sizes = codes.max(dim=0).values + 1
        offsets = torch.cumsum(sizes, 0) - sizes
        self.register_buffer("codes", codes + offsets[None])
        self.code_emb = nn.Embedding(int(sizes.sum()), dim)
        nn.init.normal_(self.code_emb.weight, std=dim**-0.5)
        self.add_id = add_id

    def item_embeddings(self) -> torch.Tensor:
        items = self.code_emb(self.codes).sum(dim=1)
        if self.add_id:
            items = items + self.item_emb.weight[1:]
        return torch.cat([items.new_zeros(1, items.shape[1]), items])
