"""The multi-gate mixture-of-experts network (Ma et al., KDD 2018): shared experts, one softmax
gate and one tower per task (or one gate shared by every task: the single-gate ablation).

Input of a (user, candidate) pair: the user's history as the mean of its items' ID embeddings
and of their projected MiniLM text embeddings, the candidate's ID and projected text
embeddings, their element-wise products, and the pair's dense features (first-stage score and
rank, popularity, item-to-item score, text cosine: see `features`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _mlp(d_in: int, hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, d_out)
    )


class MMoENet(nn.Module):
    def __init__(
        self,
        n_items: int,
        text: np.ndarray,
        n_dense: int,
        *,
        dim: int,
        experts: int,
        expert_dim: int,
        hidden: int,
        tasks: int,
        gates: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.id_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.id_emb.weight, std=dim**-0.5)
        table = np.concatenate([np.zeros((1, text.shape[1]), np.float32), text])
        self.register_buffer("text", torch.as_tensor(table, dtype=torch.float32))
        self.text_proj = nn.Linear(text.shape[1], dim)
        self.dense_norm = nn.LayerNorm(n_dense)
        d_in = 6 * dim + n_dense
        self.experts = nn.ModuleList(
            _mlp(d_in, hidden, expert_dim, dropout) for _ in range(experts)
        )
        self.gates = nn.ModuleList(nn.Linear(d_in, experts) for _ in range(gates))
        self.towers = nn.ModuleList(
            _mlp(expert_dim, max(hidden // 2, 1), 1, dropout) for _ in range(tasks)
        )

    def forward(
        self, hist: torch.Tensor, cand: torch.Tensor, dense: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """hist (B, L) and cand (B, C): item index + 1 (0 = padding); dense (B, C, n_dense).
        Returns logits (B, C, tasks) and gate weights (B, C, gates, experts)."""
        mask = (hist > 0).unsqueeze(-1).float()
        count = mask.sum(1).clamp(min=1.0)
        user_id = (self.id_emb(hist) * mask).sum(1) / count
        user_text = self.text_proj((self.text[hist] * mask).sum(1) / count)
        cand_id, cand_text = self.id_emb(cand), self.text_proj(self.text[cand])
        c = cand.shape[1]
        user_id = user_id.unsqueeze(1).expand(-1, c, -1)
        user_text = user_text.unsqueeze(1).expand(-1, c, -1)
        x = torch.cat(
            [user_id, user_text, cand_id, cand_text, user_id * cand_id, user_text * cand_text,
             self.dense_norm(dense)],
            dim=-1,
        )  # fmt: skip
        expert_out = torch.stack([e(x) for e in self.experts], dim=-2)  # (B, C, E, D)
        weights = torch.stack([torch.softmax(g(x), dim=-1) for g in self.gates], dim=-2)
        logits = []
        for t, tower in enumerate(self.towers):
            w = weights[..., min(t, len(self.gates) - 1), :]  # one gate: every task shares it
            logits.append(tower((w.unsqueeze(-1) * expert_out).sum(-2)).squeeze(-1))
        return torch.stack(logits, dim=-1), weights
