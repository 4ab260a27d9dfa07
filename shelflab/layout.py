"""Where the pipeline keeps its files, relative to the repo root (mirrors dvc.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def processed(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def enriched(self) -> Path:
        return self.root / "data" / "enriched"

    @property
    def splits(self) -> Path:
        return self.processed / "splits.parquet"

    @property
    def qrels(self) -> Path:
        return self.processed / "qrels.parquet"

    @property
    def item_ids(self) -> Path:
        """Next-item track: relabelled item_id -> source_item_id (`data_io.relabel`)."""
        return self.processed / "item_ids.parquet"

    def model_dir(self, name: str) -> Path:
        return self.root / "artifacts" / name / "model"

    def index_dir(self, name: str) -> Path:
        return self.root / "artifacts" / name / "index"

    def runs_dir(self, name: str) -> Path:
        return self.root / "runs" / name

    def per_query(self, name: str) -> Path:
        return self.root / "reports" / "per_query" / f"{name}.parquet"

    def model_metrics(self, name: str) -> Path:
        return self.root / "metrics" / "models" / f"{name}.json"

    def curve(self, name: str) -> Path:
        return self.root / "plots" / "metric_at_k" / f"{name}.csv"

    def timings(self, stage: str) -> Path:
        """A stage's wall / CPU / peak RSS (written by every stage: `dvc metrics show`)."""
        return self.root / "metrics" / "timings" / f"{stage}.json"

    @property
    def cache_dir(self) -> Path:
        return self.root / ".cache" / "shelflab"

    def built_models(self) -> list[str]:
        """Models with both a model and an index directory, i.e. built by `dvc repro`."""
        base = self.root / "artifacts"
        if not base.is_dir():
            return []
        return sorted(
            p.name for p in base.iterdir() if (p / "model").is_dir() and (p / "index").is_dir()
        )
