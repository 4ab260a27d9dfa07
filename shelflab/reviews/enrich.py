"""Item text of the review track: catalog fields + review keywords of the TRAINING period only.

Keywords come from the offline TF-IDF extractor (`backend: tfidf`, the default) or from an LLM
behind an OpenAI-compatible endpoint (`backend: llm`, shelflab.reviews.llm, cached per item). With
`summaries: true` the LLM also shortens long descriptions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from shelflab.errors import ConfigError
from shelflab.reviews.keywords import KeywordConfig, group_reviews, tfidf_keywords
from shelflab.reviews.track import item_text, period_reviews, review_text

BACKENDS = ("tfidf", "llm")


def enrich_items(
    items: pl.DataFrame,
    reviews: pl.DataFrame,
    splits: pl.DataFrame,
    cfg: dict[str, Any],
    *,
    root: Path,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """(items with `keywords` and labelled `text`, stats). Only train-period reviews are read."""
    # a fixed order: the LLM cache key holds the reviews in the order they are sent
    train = period_reviews(reviews, splits, "train").sort("timestamp", "review_id")
    texts = review_text(train, ["summary", "body"], ". ")
    by_item = group_reviews(zip(train["item_id"].to_list(), texts.to_list(), strict=True))
    kw_cfg = dict(cfg.get("keywords") or {})
    backend = kw_cfg.get("backend", "tfidf")
    if backend == "tfidf":
        keywords = tfidf_keywords(by_item, KeywordConfig.from_params(kw_cfg))
    elif backend == "llm":
        from shelflab.reviews.llm import llm_keywords

        keywords = llm_keywords(by_item, _llm_cfg(cfg, root))
    else:
        raise ConfigError(f"item_text.keywords.backend {backend!r}: expected one of {BACKENDS}")
    if cfg.get("summaries"):
        items = _summarised(items, _llm_cfg(cfg, root))
    out = item_text(items, keywords, cfg["fields"], cfg.get("max_chars"))
    stats = {
        "items": out.height,
        "train_reviews": train.height,
        "items_with_keywords": sum(1 for v in keywords.values() if v),
        "items_with_empty_text": int((out["text"] == "").sum()),
        "keyword_backend": backend,
        "mean_text_chars": round(float(out["text"].str.len_chars().mean() or 0.0), 1),
    }
    return out, stats


def _llm_cfg(cfg: dict[str, Any], root: Path) -> dict[str, Any]:
    llm = dict(cfg.get("llm") or {})
    cache = Path(llm.get("cache_dir", ".cache/shelflab/llm"))
    llm["cache_dir"] = str(cache if cache.is_absolute() else root / cache)
    return llm


def _summarised(items: pl.DataFrame, llm_cfg: dict[str, Any]) -> pl.DataFrame:
    from shelflab.reviews.llm import llm_summaries

    if "description" not in items.columns:
        return items
    rows = items.select("item_id", "description").filter(pl.col("description") != "")
    summaries = llm_summaries(dict(rows.iter_rows()), llm_cfg)
    return items.with_columns(
        pl.col("item_id")
        .replace_strict(summaries, default=pl.col("description"))
        .alias("description")
    )
