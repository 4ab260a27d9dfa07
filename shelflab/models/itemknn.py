"""`itemknn`: item-to-item neighbours from the training sequences; a history scores each item by
the similarity of its neighbours among the history items, recent ones weighted more.

similarity:
- `cosine`: users as the co-occurrence context, sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|)
  + shrink) (Sarwar et al. 2001; RecBole's ItemKNN with shrinkage).
- `transition`: directed, sequence-aware: how often j follows i within `window` positions in
  a training sequence (weighted 1/distance), row-normalised by sqrt of both items' counts.

Each item keeps its `neighbors` most similar items. score(u, j) = Σ_t decay^(age_t) sim(h_t, j)
over the history items h_t (age 0 = the last item).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from shelflab.models.base import TrainData
from shelflab.models.params import Param
from shelflab.models.sequential import SEQUENCE_PARAMS, SequentialRetriever


class ItemKNNRetriever(SequentialRetriever):
    family: ClassVar[str] = "itemknn"
    PARAMS: ClassVar[dict[str, Param]] = {
        **SEQUENCE_PARAMS,
        "similarity": Param("str", "cosine", choices=("cosine", "transition")),
        "neighbors": Param("int", 100, min=1, help="kept neighbours per item"),
        "shrink": Param("float", 10.0, min=0.0),
        "window": Param("int", 3, min=1, help="transition: positions ahead that count"),
        "decay": Param("float", 1.0, min=0.0, max=1.0, help="weight per step back in history"),
        "max_history": Param("int", 50, min=1, help="last n history items used"),
    }

    def fit_sequences(self, sequences: list[list[int]], train: TrainData) -> None:
        import scipy.sparse as sp

        n = len(self.item_ids)
        if self.params["similarity"] == "cosine":
            rows = np.repeat(np.arange(len(sequences)), [len(set(s)) for s in sequences])
            cols = np.fromiter((i for s in sequences for i in sorted(set(s))), dtype=np.int64)
            x = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(sequences), n))
            co = (x.T @ x).tocsr()
        else:
            co = _transitions(sequences, n, self.params["window"])
        counts = np.bincount(
            np.fromiter((i for s in sequences for i in set(s)), dtype=np.int64), minlength=n
        ).astype(np.float64)
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        norm = np.sqrt(counts[co.row] * counts[co.col]) + self.params["shrink"]
        sim = sp.csr_matrix((co.data / norm, (co.row, co.col)), shape=(n, n))
        self.sim = _keep_top(sim, self.params["neighbors"])

    def save_state(self, model_dir: Path) -> None:
        import scipy.sparse as sp

        sp.save_npz(model_dir / "similarity.npz", self.sim)

    def load_state(self, model_dir: Path) -> None:
        import scipy.sparse as sp

        self.sim = sp.load_npz(model_dir / "similarity.npz").tocsr()

    def score(self, histories: list[list[int]]) -> np.ndarray:
        import scipy.sparse as sp

        decay, last = self.params["decay"], self.params["max_history"]
        rows, cols, vals = [], [], []
        for r, h in enumerate(histories):
            h = h[-last:]
            weights = decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float64)
            rows.extend([r] * len(h))
            cols.extend(h)
            vals.extend(weights)
        w = sp.csr_matrix((vals, (rows, cols)), shape=(len(histories), len(self.item_ids)))
        return np.asarray((w @ self.sim).todense())


def _transitions(sequences: list[list[int]], n: int, window: int):
    import scipy.sparse as sp

    rows, cols, vals = [], [], []
    for s in sequences:
        for d in range(1, window + 1):
            rows.extend(s[:-d])
            cols.extend(s[d:])
            vals.extend([1.0 / d] * max(0, len(s) - d))
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def _keep_top(sim, k: int):
    """Each row's k largest entries (ties: lower column first)."""
    import scipy.sparse as sp

    sim = sim.tocsr()
    rows, cols, vals = [], [], []
    for r in range(sim.shape[0]):
        start, end = sim.indptr[r], sim.indptr[r + 1]
        if end == start:
            continue
        c, v = sim.indices[start:end], sim.data[start:end]
        order = np.lexsort((c, -v))[:k]
        rows.extend([r] * len(order))
        cols.extend(c[order])
        vals.extend(v[order])
    return sp.csr_matrix((vals, (rows, cols)), shape=sim.shape)
