"""The valid semantic-ID tuples as a trie, and the beam search constrained to it.

The trie is one child table per level: `tables[l][node, token]` is the node reached from
`node` (a valid prefix of length l) by `token`, or -1 when no catalog item continues that way.
The root is node 0 of level 0; the nodes after the last level are the items (`leaf_item`).
Tables are dense over each level's tokens, so one gather per decoding step masks every beam.

The beam search asks a `step` function for the next level's logits of a batch of prefixes and
keeps, per query, the `beams` best valid prefixes by summed log-probability. Every finished
beam is a catalog item, so the invalid-tuple rate under the constraint is 0 by construction;
`decode` still counts beams that map to no item (the check a test and the MLflow run see).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from shelflab.errors import InputError


class CodeTrie:
    """`codes` (n_items, depth) int: item i's tuple, level-local tokens in [0, sizes[l])."""

    def __init__(self, codes: np.ndarray, device: str = "cpu") -> None:
        codes = np.asarray(codes, dtype=np.int64)
        self.depth = codes.shape[1]
        self.sizes = [int(s) for s in codes.max(axis=0) + 1]
        tables, node = [], np.zeros(len(codes), dtype=np.int64)
        for level, size in enumerate(self.sizes):
            key = node * size + codes[:, level]
            uniq, child = np.unique(key, return_inverse=True)
            table = np.full((int(node.max(initial=0)) + 1, size), -1, dtype=np.int64)
            table[uniq // size, uniq % size] = np.arange(len(uniq))
            tables.append(torch.as_tensor(table, device=device))
            node = child
        if len(np.unique(node)) != len(codes):
            raise InputError(
                "two items share one semantic-ID tuple",
                path="semantic_ids",
                expected="unique tuples (the RQ-VAE's collision level numbers the items)",
            )
        leaf = np.full(len(codes), -1, dtype=np.int64)
        leaf[node] = np.arange(len(codes))
        self.tables = tables
        self.leaf_item = torch.as_tensor(leaf, device=device)

    def is_item(self, tuples: np.ndarray) -> np.ndarray:
        """For (n, depth) tuples: whether each is a catalog item's tuple."""
        node = np.zeros(len(tuples), dtype=np.int64)
        ok = np.ones(len(tuples), dtype=bool)
        for level, table in enumerate(self.tables):
            token = tuples[:, level]
            inside = (token >= 0) & (token < table.shape[1])
            ok &= inside
            nxt = table.cpu().numpy()[node, np.where(inside, token, 0)]
            ok &= nxt >= 0
            node = np.where(ok, nxt, 0)
        return ok


@dataclass
class Beams:
    items: torch.Tensor  # (B, beams) catalog indices, -1 where fewer valid tuples exist
    logprob: torch.Tensor  # (B, beams), -inf where items is -1
    first_logprob: torch.Tensor  # (B, sizes[0]) log-probabilities of the first level's tokens
    invalid: int  # finished beams whose tuple is no item (0 under the constraint)


def decode(
    step: Callable[[torch.Tensor], torch.Tensor],
    trie: CodeTrie,
    batch: int,
    beams: int,
    device: str,
) -> Beams:
    """Constrained beam search for `batch` queries. `step(prefix)` gets the prefixes so far
    (B * n, t), the n rows of each query consecutive, and returns their (B * n, sizes[t])
    next-level logits."""
    rows = torch.arange(batch, device=device)
    first = torch.log_softmax(step(rows.new_zeros(batch, 0)).float(), dim=-1)
    score = first.masked_fill(trie.tables[0][0][None] < 0, float("-inf"))
    k = min(beams, score.shape[1])
    score, token = score.topk(k, dim=1)  # (B, k)
    node = trie.tables[0][0][token].clamp(min=0)
    prefix = token[..., None]
    for level in range(1, trie.depth):
        flat = prefix.reshape(batch * prefix.shape[1], -1)
        logp = torch.log_softmax(step(flat).float(), dim=-1)
        size = logp.shape[1]
        children = trie.tables[level][node.reshape(-1)]  # (B * k, size)
        total = score.reshape(-1, 1) + logp.masked_fill(children < 0, float("-inf"))
        k = min(beams, prefix.shape[1] * size)
        score, pick = total.reshape(batch, -1).topk(k, dim=1)
        parent, token = pick // size, pick % size
        node = children.reshape(batch, -1, size)[rows[:, None], parent, token].clamp(min=0)
        prefix = torch.cat([prefix[rows[:, None], parent], token[..., None]], dim=2)
    alive = torch.isfinite(score)
    items = torch.where(alive, trie.leaf_item[node], -1)
    invalid = int((alive & (items < 0)).sum())
    return Beams(items, score.masked_fill(items < 0, float("-inf")), first, invalid)
