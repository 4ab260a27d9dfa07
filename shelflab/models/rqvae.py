"""RQ-VAE semantic IDs (TIGER, Rajput et al., NeurIPS 2023): each item's text embedding is
encoded to a latent vector and quantised by `levels` residual codebooks of `codes` entries; an
item's semantic ID is its code at each level, plus a final collision level that numbers the items
sharing the same codes (0, 1, …) so every item keeps a unique ID.

Training: MLP encoder/decoder, reconstruction MSE + codebook and commitment losses
(β = `beta`) with the straight-through estimator; codebooks start from k-means of each level's
residuals, and codes no item used during an epoch are re-seeded from random residuals (dead
codes are the usual failure of RQ-VAE). `stats` reports codebook usage per level, distinct code
tuples and collisions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class SemanticIds:
    codes: np.ndarray  # (n_items, levels + 1) int64: levels, then the collision index
    stats: dict[str, Any]


def _mlp(sizes: list[int]):
    from torch import nn

    layers: list[Any] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no activation on the output


def _build(in_dim: int, hidden: list[int], latent: int, levels: int, codes: int):
    import torch
    from torch import nn

    class RQVAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = _mlp([in_dim, *hidden, latent])
            self.decoder = _mlp([latent, *reversed(hidden), in_dim])
            self.codebooks = nn.Parameter(torch.zeros(levels, codes, latent))

        def quantise(self, z: torch.Tensor):
            residual, quantised, idx = z, torch.zeros_like(z), []
            for book in self.codebooks:
                i = torch.cdist(residual, book).argmin(dim=1)
                idx.append(i)
                quantised = quantised + book[i]
                residual = residual - book[i]
            return quantised, torch.stack(idx, dim=1)

    return RQVAE()


def train_rqvae(embeddings: np.ndarray, p: dict[str, Any]) -> SemanticIds:
    """Semantic IDs for `embeddings` (n_items, dim). `p`: levels, codes, latent, hidden, beta,
    lr, epochs, batch_size, seed."""
    import torch
    import torch.nn.functional as F
    from sklearn.cluster import KMeans

    torch.manual_seed(p["seed"])
    rng = np.random.default_rng(p["seed"])
    x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    n = len(x)
    codes = min(p["codes"], n)
    model = _build(x.shape[1], list(p["hidden"]), p["latent"], p["levels"], codes)
    with torch.no_grad():  # k-means init of each level on the untrained encoder's residuals
        residual = model.encoder(x)
        for level in range(p["levels"]):
            km = KMeans(codes, n_init=1, random_state=p["seed"]).fit(residual.numpy())
            model.codebooks[level] = torch.as_tensor(km.cluster_centers_, dtype=torch.float32)
            residual = residual - model.codebooks[level][torch.as_tensor(km.labels_)]
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
    history = []
    for epoch in range(p["epochs"]):
        used = torch.zeros(p["levels"], codes, dtype=torch.bool)
        total = 0.0
        for batch in np.array_split(rng.permutation(n), max(1, n // p["batch_size"])):
            xb = x[batch]
            z = model.encoder(xb)
            residual, quantised, loss_q = z, torch.zeros_like(z), 0.0
            for level, book in enumerate(model.codebooks):
                i = torch.cdist(residual.detach(), book).argmin(dim=1)
                used[level, i] = True
                q = book[i]
                loss_q = loss_q + F.mse_loss(q, residual.detach())
                loss_q = loss_q + p["beta"] * F.mse_loss(residual, q.detach())
                quantised = quantised + q
                residual = residual - q.detach()
            z_q = z + (quantised - z).detach()  # straight-through
            loss = F.mse_loss(model.decoder(z_q), xb) + loss_q
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
        _reseed_dead_codes(model, x, used, rng)
        if epoch % max(1, p["epochs"] // 10) == 0 or epoch == p["epochs"] - 1:
            history.append({"epoch": epoch + 1, "loss": round(total / n, 6)})
    with torch.no_grad():
        z = model.encoder(x)
        quantised, idx = model.quantise(z)
        recon = float(F.mse_loss(model.decoder(quantised), x))
    codes_arr = idx.numpy().astype(np.int64)
    collision, stats = _collision_level(codes_arr)
    stats |= {
        "reconstruction_mse": round(recon, 6),
        "codebook_usage": [
            round(len(np.unique(codes_arr[:, lv])) / codes, 4) for lv in range(p["levels"])
        ],
        "history": history,
    }
    return SemanticIds(np.concatenate([codes_arr, collision[:, None]], axis=1), stats)


def _reseed_dead_codes(model, x, used, rng: np.random.Generator) -> None:
    """Codes no item picked this epoch move to random items' residuals at their level."""
    import torch

    with torch.no_grad():
        residual = model.encoder(x)
        for level, book in enumerate(model.codebooks):
            dead = (~used[level]).nonzero().flatten()
            if len(dead):
                pick = torch.as_tensor(rng.choice(len(x), len(dead), replace=len(dead) > len(x)))
                book[dead] = residual[pick]
            residual = residual - book[torch.cdist(residual, book).argmin(dim=1)]


def _collision_level(codes: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The index of each item among the items with the same code tuple (item order)."""
    seen: dict[tuple[int, ...], int] = {}
    out = np.zeros(len(codes), dtype=np.int64)
    for i, row in enumerate(map(tuple, codes)):
        out[i] = seen.get(row, 0)
        seen[row] = out[i] + 1
    sizes = np.asarray(list(seen.values()))
    return out, {
        "items": len(codes),
        "distinct_code_tuples": len(seen),
        "items_in_collision": int(sizes[sizes > 1].sum()),
        "collision_rate": round(float(sizes[sizes > 1].sum()) / max(1, len(codes)), 4),
        "max_items_per_tuple": int(sizes.max()) if len(sizes) else 0,
    }
