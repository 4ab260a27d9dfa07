"""The two towers. Items: ID embedding (+ a linear projection of the frozen text embedding),
L2-normalised. Users: the masked mean and the last of their history's item vectors, through an
MLP, L2-normalised; scores are cosines (divided by a temperature in training)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class TwoTowerNet(nn.Module):
    def __init__(self, n_items: int, dim: int, text: np.ndarray | None, dropout: float) -> None:
        super().__init__()
        self.id_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.id_emb.weight, std=dim**-0.5)
        self.proj = None
        if text is not None:
            table = np.concatenate([np.zeros((1, text.shape[1]), np.float32), text])
            self.register_buffer("text", torch.as_tensor(table, dtype=torch.float32))
            self.proj = nn.Linear(text.shape[1], dim)
        self.user_mlp = nn.Sequential(
            nn.Linear(2 * dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )

    def items(self) -> torch.Tensor:
        """(n_items + 1, dim); row 0 is padding (masked out by `users`)."""
        vec = self.id_emb.weight
        if self.proj is not None:
            vec = vec + self.proj(self.text)
        return F.normalize(vec, dim=-1)

    def users(self, seq: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B, L) left-padded item indices + 1 -> (B, dim)."""
        emb = items[seq]
        mask = (seq > 0).unsqueeze(-1).to(emb.dtype)
        mean = (emb * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        last = emb[:, -1] * mask[:, -1]
        return F.normalize(self.user_mlp(torch.cat([mean, last], dim=-1)), dim=-1)
