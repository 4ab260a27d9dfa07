"""Prompt size of llm_rerank on the shipped next-item sample (itemknn top 20, latest 20 history
items, texts cut at 200 chars): characters per request, the basis of the README's cost line.
Run from tracks/nextitem after `dvc repro` (it opens the built itemknn):

    cd tracks/nextitem && python ../../bench/llm_prompt_size.py
"""

import numpy as np
import polars as pl

from shelflab.llm.rerank import rerank_messages
from shelflab.models import ModelContext, open_model

m = open_model("artifacts/itemknn/model", "artifacts/itemknn/index", ModelContext())
items = pl.read_parquet("data/enriched/items.parquet")
title = {i: " ".join(t.split())[:200] for i, t in items.select("item_id", "text").iter_rows()}
q = pl.read_parquet("data/enriched/queries.parquet")
splits = pl.read_parquet("data/processed/splits.parquet").filter(pl.col("split") == "test")
q = q.join(splits, on="query_id", how="semi").head(500)
run = m.retrieve(q.select("query_id", "history"), 20)
cands = run.group_by("query_id", maintain_order=True).agg("item_id")
hist = dict(q.select("query_id", "history").iter_rows())
sizes = []
for qid, c in cands.iter_rows():
    msgs = rerank_messages([title[i] for i in c], history=[title[i] for i in hist[qid][-20:]])
    sizes.append(sum(len(x["content"]) for x in msgs))
print(f"{len(sizes)} prompts: mean {np.mean(sizes):.0f} chars, p95 {np.percentile(sizes, 95):.0f}")
