"""The TIGER network (Rajput et al., NeurIPS 2023): an encoder-decoder transformer over
semantic-ID tokens. The encoder reads the history as the tuples of its last `maxlen` items
(each token = its code embedding + its level + the item's position from the right; with
`per_item` the tokens of an item are summed into one position, 1/depth of the attention cost)
behind one learned start token (so an empty history still has something to attend to); the
decoder emits
the next item's tuple one level at a time, from a learned BOS, with one output layer per level
over that level's tokens only.

The decoder is written out (pre-LN self-attention, cross-attention, feed-forward) for one
reason: during beam search the `beams` prefixes of a query share its memory, so the
cross-attention reads each query's memory once with all its beams' positions as queries,
instead of copying the memory and projecting its keys/values once per beam (20x the work).

Tokens: level l's token c is vocabulary row 1 + offsets[l] + c; row 0 is padding.
"""

from __future__ import annotations

import torch
from torch import nn


class TigerNet(nn.Module):
    def __init__(
        self, sizes: list[int], maxlen: int, dim: int, layers: int, heads: int, dropout: float,
        per_item: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.sizes, self.maxlen, self.depth = list(sizes), maxlen, len(sizes)
        self.per_item = per_item
        offsets = torch.cumsum(torch.tensor([0, *sizes[:-1]]), 0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.token_emb = nn.Embedding(1 + sum(sizes), dim, padding_idx=0)
        self.level_emb = nn.Embedding(self.depth, dim)
        self.pos_emb = nn.Embedding(maxlen, dim)
        self.start = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
        self.bos = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
        block = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(
            block, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False
        )
        self.decoder = nn.ModuleList(DecoderLayer(dim, heads, dropout) for _ in range(layers))
        self.decoder_norm = nn.LayerNorm(dim)
        self.heads = nn.ModuleList(nn.Linear(dim, s) for s in sizes)

    def tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., depth) level-local codes, -1 = padding -> (..., depth) vocabulary rows."""
        return torch.where(codes < 0, 0, codes + 1 + self.offsets)

    def encode(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, depth) codes of the last L <= maxlen items, left-padded with -1 ->
        memory (B, 1 + L * depth, dim) (per_item: (B, 1 + L, dim)) and its padding mask
        (True = padding)."""
        batch, width, depth = history.shape
        tok = self.tokens(history)
        levels = torch.arange(depth, device=history.device)
        positions = torch.arange(self.maxlen - width, self.maxlen, device=history.device)
        x = self.token_emb(tok) + self.level_emb(levels)[None, None]
        if self.per_item:  # one position per item: the sum of its tokens
            x, pad = x.sum(dim=2) + self.pos_emb(positions)[None], tok[..., 0] == 0
        else:  # one position per token
            x = (x + self.pos_emb(positions)[None, :, None]).reshape(batch, width * depth, -1)
            pad = (tok == 0).reshape(batch, -1)
        x = torch.cat([self.start.expand(batch, 1, -1), x], 1)
        pad = torch.cat([pad.new_zeros(batch, 1), pad], 1)
        return self.encoder(x, src_key_padding_mask=pad), pad

    def decode(self, memory: torch.Tensor, pad: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Decoder states after BOS + `prefix` ((R, t) level-local codes of levels 0..t-1,
        R = a multiple of the B queries of `memory`, each query's rows consecutive):
        (R, t + 1, dim); state t predicts level t."""
        rows, t = prefix.shape
        x = self.bos.expand(rows, 1, -1)
        if t:
            levels = torch.arange(t, device=prefix.device)
            x = torch.cat([x, self.token_emb(self.tokens_at(prefix)) + self.level_emb(levels)], 1)
        causal = torch.ones(t + 1, t + 1, dtype=torch.bool, device=prefix.device).triu(1)
        for layer in self.decoder:
            x = layer(x, memory, pad, causal)
        return self.decoder_norm(x)

    def tokens_at(self, prefix: torch.Tensor) -> torch.Tensor:
        """(R, t) level-local codes of levels 0..t-1 -> vocabulary rows."""
        return prefix + 1 + self.offsets[: prefix.shape[1]]

    def forward(self, history: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """Teacher forcing: the logits of each level of `target` (B, depth), a list of
        (B, sizes[l]) tensors."""
        memory, pad = self.encode(history)
        states = self.decode(memory, pad, target[:, :-1])
        return [head(states[:, level]) for level, head in enumerate(self.heads)]

    def next_logits(
        self, memory: torch.Tensor, pad: torch.Tensor, prefix: torch.Tensor
    ) -> torch.Tensor:
        """(R, sizes[t]) logits of level t = prefix.shape[1] for prefixes whose memory rows
        are given."""
        states = self.decode(memory, pad, prefix)
        return self.heads[prefix.shape[1]](states[:, -1])


class DecoderLayer(nn.Module):
    """Pre-LN decoder block whose cross-attention serves all beams of a query at once."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor, causal: torch.Tensor
    ) -> torch.Tensor:
        rows, t, dim = x.shape
        batch = memory.shape[0]
        h = self.norms[0](x)
        x = x + self.drop(self.self_attn(h, h, h, attn_mask=causal, need_weights=False)[0])
        # (B * beams, t) positions -> (B, beams * t) queries of the same memory
        h = self.norms[1](x).reshape(batch, rows // batch * t, dim)
        read = self.cross_attn(h, memory, memory, key_padding_mask=pad, need_weights=False)[0]
        x = x + self.drop(read.reshape(rows, t, dim))
        return x + self.drop(self.ff(self.norms[2](x)))
