"""`popularity`: every user gets the items most often in the training sequences (the floor any
sequential model must clear). Scores are the training counts; history items are masked by the
base class, so each user sees the most popular items they have not had yet."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from shelflab.models.base import TrainData
from shelflab.models.params import Param
from shelflab.models.sequential import SEQUENCE_PARAMS, SequentialRetriever, item_counts


class PopularityRetriever(SequentialRetriever):
    family: ClassVar[str] = "popularity"
    PARAMS: ClassVar[dict[str, Param]] = {
        **SEQUENCE_PARAMS,
        "last_n": Param(
            "int", 0, min=0, help="count only each user's last n training items (0 = all)"
        ),
    }

    def fit_sequences(self, sequences: list[list[int]], train: TrainData) -> None:
        last_n = self.params["last_n"]
        counted = [s[-last_n:] for s in sequences] if last_n else sequences
        self.counts = item_counts(counted, len(self.item_ids))

    def save_state(self, model_dir: Path) -> None:
        np.save(model_dir / "counts.npy", self.counts)

    def load_state(self, model_dir: Path) -> None:
        self.counts = np.load(model_dir / "counts.npy")

    def score(self, histories: list[list[int]]) -> np.ndarray:
        return np.broadcast_to(self.counts.astype(np.float64), (len(histories), len(self.counts)))
