"""Metric speed: ShelfLab's harness vs pytrec_eval vs ranx on >= 50,000 queries x 100 results.

Data (real, Home Depot search relevance): every distinct search term of train.csv.gz (9,436)
is a query; its judgments (grade = relevance - 1, floats such as 0.33) are the qrels. Runs come
from six real lexical scorers over all 54,667 product titles (candidates share a non-stopword
token with the search term): token overlap, idf sum, BM25 (b=0.75 and b=0.3), idf / sqrt(title
length) and idf coverage of the query. Each (scorer, search term) pair is one query -> 56,616
queries, each with exactly 100 results (terms with fewer candidates are topped up with the most
judged products, scored below every candidate). Scores sit on a 2^-16 grid: deterministic, and
exact in float32, which is how trec_eval stores scores, so all three rank the same way. They tie
a lot (as lexical scores do); trec_eval breaks ties by item_id descending like us, ranx's order
of ties is undefined, so ranx gets the same ranking with distinct scores (-rank).

pytrec_eval and ranx take integer grades only: they get 100 x grade with relevance level 100
(the same relevant set; linear nDCG is scale invariant), so values must agree with ours.

Timed end to end from polars DataFrames (the form runs and qrels have in ShelfLab):
- ours: shelflab.evaluation.harness.evaluate(qrels, run, metrics) incl. input validation, on
  the run as a model writes it (grouped by query, best first) and on a shuffled copy;
- pytrec_eval: polars -> dict-of-dicts conversion (group_by + dict(zip); a plain per-row loop
  is shown too, timed once) + RelevanceEvaluator + evaluate;
- ranx: the same conversion + Qrels/Run construction + evaluate (JIT compiled beforehand).

Then from TREC files, as `shelflab evaluate --qrels --run` reads them: read_qrels + read_run_checked
(parse and validate) + evaluate against pytrec_eval's parse_qrel + parse_run + evaluate.

    python bench/bench_metrics.py                 # all 56,616 queries
    python bench/bench_metrics.py --variants 2    # 18,872 queries, quicker
    python bench/bench_metrics.py --files-only    # only the TREC-files comparison
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from shelflab.evaluation.harness import evaluate

DATA = (
    Path(
        os.environ.get("SHELFLAB_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    / "home-depot-search-relevance"
)
METRICS = ["ndcg@10", "recall@100", "mrr", "map@100"]
PYTREC = {"ndcg@10": "ndcg_cut_10", "recall@100": "recall_100", "mrr": "recip_rank",
          "map@100": "map_cut_100"}  # fmt: skip
RANX = {"ndcg@10": "ndcg@10", "recall@100": "recall@100-l100", "mrr": "mrr-l100",
        "map@100": "map@100-l100"}  # fmt: skip
DEPTH = 100
TOKEN = r"[a-z0-9]+"
MAX_DF = 2500  # tokens in more titles than this ("in", "x", "with", ...) create no candidates
GRID = 65536  # scores on a 2^-16 grid


def read_latin1_csv(path: Path) -> pl.DataFrame:
    with gzip.open(path) as fh:
        return pl.read_csv(io.StringIO(fh.read().decode("latin-1")), infer_schema=False)


def build(n_variants: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(qrels, run) as described in the module docstring."""
    train = read_latin1_csv(DATA / "train.csv.gz")
    products = read_latin1_csv(DATA / "products.csv.gz").rename(
        {"product_uid": "item_id", "product_title": "title"}
    )
    terms = train.select("search_term").unique().sort("search_term")
    terms = terms.with_columns(
        pl.format("hd{}", pl.int_range(pl.len()).cast(pl.String).str.zfill(5)).alias("term_id")
    )
    judged = train.join(terms, on="search_term").select(
        "term_id",
        pl.col("product_uid").alias("item_id"),
        (pl.col("relevance").cast(pl.Float64) - 1.0).alias("grade"),
    )

    doc_tokens = (
        products.select("item_id", pl.col("title").str.to_lowercase().str.extract_all(TOKEN))
        .explode("title")
        .drop_nulls()
        .unique()
        .rename({"title": "token"})
    )
    doc_len = doc_tokens.group_by("item_id").len("dl")
    avg_len = doc_len["dl"].mean()
    n_docs = products.height
    stats = (
        doc_tokens.group_by("token")
        .len("df")
        .with_columns((pl.lit(float(n_docs)) / pl.col("df")).log().alias("idf"))
    )
    query_tokens = (
        terms.select("term_id", pl.col("search_term").str.to_lowercase().str.extract_all(TOKEN))
        .explode("search_term")
        .drop_nulls()
        .unique()
        .rename({"search_term": "token"})
        .join(stats, on="token")
    )
    query_idf = query_tokens.group_by("term_id").agg(pl.col("idf").sum().alias("q_idf"))
    matches = (
        query_tokens.filter(pl.col("df") <= MAX_DF)
        .join(doc_tokens, on="token")
        .join(doc_len, on="item_id")
    )

    def bm25(b: float) -> pl.Expr:
        k1 = 1.2
        return pl.col("idf") * (k1 + 1) / (1 + k1 * (1 - b + b * pl.col("dl") / avg_len))

    contributions = {
        "overlap": pl.lit(1.0),
        "idf": pl.col("idf"),
        "bm25": bm25(0.75),
        "bm25b03": bm25(0.3),
        "idflen": pl.col("idf") / pl.col("dl").sqrt(),
        "coverage": pl.col("idf"),  # divided by the query's total idf below
    }
    # integer sums: exact whatever the summation order, so scores are deterministic
    scored = matches.group_by("term_id", "item_id").agg(
        (c * GRID).round().cast(pl.Int64).sum().alias(name) for name, c in contributions.items()
    )
    scored = scored.join(query_idf, on="term_id").with_columns(
        (pl.col("coverage") / pl.col("q_idf")).round().cast(pl.Int64).alias("coverage")
    )
    popular = (
        judged.group_by("item_id").len("n").sort(["n", "item_id"], descending=True).head(2 * DEPTH)
    )
    popular = popular.with_columns(pl.int_range(1, pl.len() + 1).alias("pop_rank"))

    runs, qrels = [], []
    for name in list(contributions)[:n_variants]:
        top = (
            scored.select("term_id", "item_id", (pl.col(name) / GRID).alias("score"))
            .sort(["term_id", "score", "item_id"], descending=[False, True, True])
            .group_by("term_id", maintain_order=True)
            .head(DEPTH)
        )
        # top up to DEPTH results with popular products scored below every candidate
        counts = top.group_by("term_id").len("n")
        fill = (
            terms.select("term_id")
            .join(counts, on="term_id", how="left")
            .with_columns(pl.col("n").fill_null(0))
            .filter(pl.col("n") < DEPTH)
            .join(popular.select("item_id", "pop_rank"), how="cross")
            .join(top.select("term_id", "item_id"), on=["term_id", "item_id"], how="anti")
            .sort(["term_id", "pop_rank"])
            .with_columns(pl.int_range(pl.len()).over("term_id").alias("i"))
            .filter(pl.col("i") < DEPTH - pl.col("n"))
            .select("term_id", "item_id", (-pl.col("pop_rank").cast(pl.Float64)).alias("score"))
        )
        prefix = pl.lit(f"{name}:")
        runs.append(
            pl.concat([top, fill]).select(
                pl.concat_str(prefix, "term_id").alias("query_id"), "item_id", "score"
            )
        )
        qrels.append(
            judged.select(pl.concat_str(prefix, "term_id").alias("query_id"), "item_id", "grade")
        )
    run = pl.concat(runs).sort(["query_id", "score", "item_id"], descending=[False, True, True])
    run = run.with_columns(pl.int_range(1, pl.len() + 1).over("query_id").alias("rank"))
    return pl.concat(qrels), run


def nested(df: pl.DataFrame, value: str) -> dict[str, dict]:
    """{query_id: {item_id: value}} (Python ints for an integer column, floats otherwise)."""
    grouped = df.group_by("query_id").agg("item_id", value)
    return {q: dict(zip(items, values, strict=True)) for q, items, values in grouped.iter_rows()}


def timed(fn: Callable, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def from_files(
    qrels: pl.DataFrame,
    int_qrels: pl.DataFrame,
    run: pl.DataFrame,
    repeat: int,
    means: dict[str, float],
) -> None:
    """`shelflab evaluate --qrels --run` from TREC files (read, validate, evaluate) against
    pytrec_eval's own parse_qrel / parse_run + evaluate of the same files, side by side."""
    import tempfile

    import pytrec_eval

    from shelflab.data_io.trec import (
        read_qrels,
        read_run_checked,
        write_qrels_trec,
        write_run_trec,
    )

    with tempfile.TemporaryDirectory() as tmp:
        files = {name: Path(tmp) / name for name in ("q", "q_int", "run")}
        write_qrels_trec(qrels, files["q"])
        write_qrels_trec(int_qrels.select("query_id", "item_id", pl.col("g").alias("grade")),
                         files["q_int"])  # fmt: skip
        write_run_trec(run, files["run"])
        mb = files["run"].stat().st_size / 2**20

        def ours():  # as `shelflab evaluate --qrels --run` does it
            return evaluate(read_qrels(files["q"]), read_run_checked(files["run"]), METRICS)

        # where our time goes (one timing each, outside the comparison)
        t_q, q = timed(lambda: read_qrels(files["q"]), 1)
        t_r, r = timed(lambda: read_run_checked(files["run"]), 1)
        t_e, _ = timed(lambda: evaluate(q, r, METRICS), 1)

        def theirs():
            with files["q_int"].open() as fq, files["run"].open() as fr:
                q, r = pytrec_eval.parse_qrel(fq), pytrec_eval.parse_run(fr)
            measures = {"ndcg_cut.10", "recall.100", "recip_rank", "map_cut.100"}
            return pytrec_eval.RelevanceEvaluator(q, measures, relevance_level=100).evaluate(r)

        t_ours, got = timed(ours, repeat)
        t_pt, _ = timed(theirs, repeat)
    assert all(abs(got.means[m] - means[m]) < 1e-12 for m in METRICS)
    print(f"\nfrom TREC files ({mb:.0f} MB run): read + validate + evaluate, best of {repeat}")
    print(f"{'shelflab evaluate --run':28s} {t_ours:8.2f} s   (read_qrels {t_q:.2f}, "
          f"read_run {t_r:.2f}, evaluate {t_e:.2f})")  # fmt: skip
    print(f"{'pytrec_eval parse + eval':28s} {t_pt:8.2f} s   = {t_pt / t_ours:.2f} x ours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=6, help="scorers (x 9,436 queries)")
    parser.add_argument("--repeat", type=int, default=2, help="best of N timings")
    parser.add_argument(
        "--files-only", action="store_true", help="only the from-TREC-files comparison"
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    qrels, run = build(args.variants)
    n_q = run["query_id"].n_unique()
    per_q = run.group_by("query_id").len()["len"]
    print(f"data: {n_q:,} queries x {per_q.min()}-{per_q.max()} results = {run.height:,} rows; "
          f"{qrels.height:,} judgments (built in {time.perf_counter() - t0:.1f} s, "
          f"{os.cpu_count()} cores)")  # fmt: skip
    shuffled = run.sample(fraction=1.0, shuffle=True, seed=0)
    int_qrels = qrels.with_columns((pl.col("grade") * 100).round().cast(pl.Int64).alias("g"))
    if args.files_only:
        from_files(qrels, int_qrels, run, args.repeat, evaluate(qrels, run, METRICS).means)
        return

    # --- ours
    t_ours, ours = timed(lambda: evaluate(qrels, run, METRICS), args.repeat)
    t_shuf, ours_shuf = timed(lambda: evaluate(qrels, shuffled, METRICS), args.repeat)
    assert ours.per_query.equals(ours_shuf.per_query)
    per_query = ours.per_query

    # --- pytrec_eval
    import pytrec_eval

    def pytrec_convert():
        return nested(int_qrels, "g"), nested(run, "score")

    def pytrec_eval_only(q, r):
        measures = {"ndcg_cut.10", "recall.100", "recip_rank", "map_cut.100"}
        return pytrec_eval.RelevanceEvaluator(q, measures, relevance_level=100).evaluate(r)

    def pytrec_convert_rows():  # the plain per-row loop, for reference
        q: dict[str, dict] = {}
        r: dict[str, dict] = {}
        for qid, item, grade in int_qrels.select("query_id", "item_id", "g").iter_rows():
            q.setdefault(qid, {})[item] = grade
        for qid, item, score in run.select("query_id", "item_id", "score").iter_rows():
            r.setdefault(qid, {})[item] = score
        return q, r

    t_pt_rows, _ = timed(pytrec_convert_rows, 1)
    t_pt_conv, (pq, pr) = timed(pytrec_convert, args.repeat)
    t_pt_eval, pt = timed(lambda: pytrec_eval_only(pq, pr), args.repeat)

    # --- ranx (tie-free scores: -rank of the same ranking)
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    ranx_run = run.with_columns((-pl.col("rank")).cast(pl.Float64).alias("score"))
    evaluated = per_query["query_id"]
    rq_int = int_qrels.filter(pl.col("query_id").is_in(evaluated.implode()))
    ranx_run = ranx_run.filter(pl.col("query_id").is_in(evaluated.implode()))
    warm_q, warm_r = Qrels({"q": {"a": 1}}), Run({"q": {"a": 1.0, "b": 0.5}})
    ranx_evaluate(warm_q, warm_r, list(RANX.values()))  # JIT compile outside the timing

    def ranx_convert():
        return nested(rq_int, "g"), nested(ranx_run, "score")

    def ranx_eval_only(q, r):
        run_obj = Run(r)
        ranx_evaluate(Qrels(q), run_obj, list(RANX.values()), make_comparable=True)
        return run_obj

    t_rx_conv, (xq, xr) = timed(ranx_convert, args.repeat)
    t_rx_eval, rx = timed(lambda: ranx_eval_only(xq, xr), args.repeat)

    # --- agreement
    def worst(ref: Callable[[str, str], float]) -> float:
        out = 0.0
        for metric in METRICS:
            mine = per_query[metric].to_numpy()
            theirs = np.array([ref(q, metric) for q in per_query["query_id"]])
            out = max(out, float(np.abs(mine - theirs).max()))
        return out

    d_pt = worst(lambda q, m: pt[q][PYTREC[m]] if q in pt else 0.0)
    d_rx = worst(lambda q, m: rx.scores[RANX[m]][q])

    t_pt, t_rx = t_pt_conv + t_pt_eval, t_rx_conv + t_rx_eval
    print(f"\nmetrics: {', '.join(METRICS)}; {ours.n_queries:,} evaluated queries; "
          f"best of {args.repeat}\n")  # fmt: skip
    rows = [
        ("shelflab (run as written)", "-", "-", t_ours),
        ("shelflab (shuffled run)", "-", "-", t_shuf),
        ("pytrec_eval", f"{t_pt_conv:.2f}", f"{t_pt_eval:.2f}", t_pt),
        (
            "pytrec_eval, row-loop dicts",
            f"{t_pt_rows:.2f}",
            f"{t_pt_eval:.2f}",
            t_pt_rows + t_pt_eval,
        ),
        ("ranx", f"{t_rx_conv:.2f}", f"{t_rx_eval:.2f}", t_rx),
    ]
    print(f"{'':28s} {'convert s':>10s} {'evaluate s':>11s} {'total s':>8s} "
          f"{'x ours':>7s} {'x ours shuffled':>16s}")  # fmt: skip
    for name, conv, ev, total in rows:
        print(f"{name:28s} {conv:>10s} {ev:>11s} {total:8.2f} {total / t_ours:7.1f} "
              f"{total / t_shuf:16.1f}")  # fmt: skip
    print(f"\nmax |ours - pytrec_eval| = {d_pt:.2e}; max |ours - ranx| = {d_rx:.2e}")
    print("means:", {m: round(v, 6) for m, v in ours.means.items()})
    from_files(qrels, int_qrels, run, args.repeat, ours.means)
    if max(d_pt, d_rx) > 1e-9:
        raise SystemExit("values disagree")


if __name__ == "__main__":
    main()
