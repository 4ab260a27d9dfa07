"""Product search track (dvc.yaml at the repo root) end to end, from tests/e2e/params/search.yaml:
`dvc repro` builds bm25, dense, hybrid and xgb_ltr, registers every pipeline and promotes a
champion; a second run is a no-op; a model's params or a model family's code make exactly the
stages that use them stale; the CLI retrieves for new queries and scores them, also through
the registered champion; `dvc push` / `dvc pull` give a second clone the outputs."""

import json

import polars as pl
import pytest

pytestmark = [pytest.mark.slow]

MODELS = {"bm25", "dense", "hybrid", "xgb_ltr"}  # evaluated, registered, on the leaderboard
SKIPPED = {"llm_rerank"}  # built, but no LLM endpoint here: evaluate@ records it as skipped
EDITED = "shelflab/models/bm25.py"


@pytest.fixture(scope="module")
def search(reproduce):
    return reproduce(".", "search.yaml")


def new_judgments(track, tmp_path, n):
    """The first `n` sample queries under new ids, as a team would hand them in: a TSV query
    file and TREC qrels."""
    processed = track.dir / "data" / "processed"
    queries = pl.read_parquet(processed / "queries.parquet").head(n)
    qrels = pl.read_parquet(processed / "qrels.parquet").join(
        queries.select("query_id"), on="query_id", how="semi"
    )
    tsv = tmp_path / "new.tsv"
    tsv.write_text("".join(f"new-{q}\t{t}\n" for q, t in queries.select("query_id", "text").rows()))
    qrels_file = tmp_path / "new.qrels"
    qrels_file.write_text("".join(f"new-{q} 0 {d} {g}\n" for q, d, g in qrels.rows()))
    return tsv, qrels_file


def test_repro_builds_every_model(search):
    work = search.dir
    assert set(search.models()) == MODELS | SKIPPED
    expected = {"code", "ingest", "split", "enrich", "leaderboard", "promote"} | {
        f"{s}@{m}" for s in ("tune", "train", "index", "evaluate") for m in search.models()
    }
    models = sorted(MODELS)
    assert expected <= search.first_run
    # this track only: the review and next-item pipelines (tracks/*/dvc.yaml) did not run
    assert not any(":" in stage for stage in search.first_run)
    assert not (work / "tracks" / "reviews" / "dvc.lock").exists()
    for name in models:
        assert (work / "manifests" / f"train@{name}.json").is_file()
        test = search.json("metrics", "models", f"{name}.json")["test"]
        assert 0 < test["ndcg@10"]["mean"] <= 1
        assert test["ndcg@10"]["ci_low"] <= test["ndcg@10"]["mean"] <= test["ndcg@10"]["ci_high"]
        run = pl.read_parquet(work / "runs" / name / "test.parquet")
        assert run.group_by("query_id").len()["len"].max() <= 100
        assert (work / "runs" / name / "test.trec").is_file()
        latency = test["_latency"]
        assert latency["queries"] > 0 and 0 < latency["p50_ms"] <= latency["p95_ms"]
    assert (work / "data" / "processed" / "quarantine.parquet").is_file()
    board = (work / "reports" / "leaderboard.md").read_text()
    assert all(name in board for name in models) and "llm_rerank" not in board
    skipped = search.json("metrics", "models", "llm_rerank.json")
    assert skipped == {"skipped": skipped["skipped"]} and "base_url" in skipped["skipped"]
    assert pl.read_parquet(work / "reports" / "per_query" / "llm_rerank.parquet").is_empty()
    # the Chroma collection lives in the dense index directory
    assert any((work / "artifacts" / "dense" / "index").rglob("chroma.sqlite3"))
    # every pipeline is a registered version; the best of the run became the first champion
    versions = {search.json("metrics", "models", f"{m}.json")["_mlflow"]["version"] for m in models}
    assert len(versions) == len(models)
    promotion = search.json("metrics", "promotion.json")
    assert promotion["promoted"] and promotion["champion_before"] is None
    assert promotion["champion_after"] == promotion["candidate_version"] in versions
    moves = json.loads(search.sh("shelflab", "history", "--format", "json").stdout)
    assert [(m["alias"], m["to"], m["action"]) for m in moves] == [
        ("champion", promotion["candidate_version"], "initial")
    ]


def test_second_repro_is_noop(search):
    assert search.repro() == set()
    assert search.up_to_date()


def test_changing_one_model_reruns_only_it(search):
    """By `dvc status` (what `dvc repro` would run first): a model's params make its own stages
    and those of the composites embedding it stale, nothing else. (tests/e2e/test_nextitem.py
    reruns a model for real, promote included.)"""
    params = search.dir / "params.yaml"
    original = params.read_text()
    # a bm25 param outside its tuning space: bm25 and every composite that embeds it go stale
    params.write_text(original.replace("stopwords: en", "stopwords: none", 1))
    stale = search.stale()
    params.write_text(original)
    assert {"tune@bm25", "train@bm25", "tune@hybrid", "train@hybrid", "train@xgb_ltr"} <= stale
    assert not any(stage.endswith("@dense") for stage in stale)
    assert not stale & {"ingest", "split", "enrich"}
    # a model nothing embeds: only its own stages (`code` reads all of `models`; its manifests
    # come back identical, so they make nothing else stale)
    changed = original.replace("early_stopping_rounds: 10", "early_stopping_rounds: 8", 1)
    assert changed != original, "search.yaml changed: xgb_ltr early_stopping_rounds not found"
    params.write_text(changed)
    stale = search.stale()
    params.write_text(original)
    assert stale == {"code", "tune@xgb_ltr", "train@xgb_ltr"}
    assert search.up_to_date()


def listing(work, path: str) -> set[str]:
    """The stages whose code manifest lists `path`."""
    return {
        manifest.stem
        for manifest in (work / "manifests").glob("*.json")
        if path in json.loads(manifest.read_text())["files"]
    }


@pytest.fixture(scope="module")
def module_edit(search):
    """Append a comment line to bm25's family module, rerun the `code` stage (the manifests),
    note which stages went stale, then put the file back: (stale, stages listing the file)."""
    source = search.root / EDITED
    original = source.read_text()
    source.write_text(original + "# edited by tests/e2e/test_search.py\n")
    try:
        assert search.repro("code") == {"code"}
        stale, listed = search.stale(), listing(search.dir, EDITED)
    finally:
        source.write_text(original)
    assert search.repro("code") == {"code"}
    assert search.up_to_date()
    return stale, listed


def test_editing_a_family_module_reruns_only_the_stages_that_import_it(module_edit):
    stale, listed = module_edit
    # exactly the stages whose manifest lists the file go stale, whatever the import graph is
    assert stale == listed
    assert {f"{s}@{m}" for s in ("tune", "train", "index", "evaluate") for m in
            ("bm25", "hybrid", "xgb_ltr")} <= stale  # fmt: skip
    assert not stale & {"code", "ingest", "split", "enrich", "leaderboard"}


def test_editing_bm25_leaves_dense_alone(module_edit):
    stale, _ = module_edit
    assert not {stage for stage in stale if stage.endswith("@dense")}


def test_registered_champion_on_new_judgments_and_report(search, tmp_path):
    tsv, qrels_file = new_judgments(search, tmp_path, 30)
    uri = "models:/shelflab-search-homedepot-sample@champion"
    res = search.sh("shelflab", "evaluate", "--model", uri, "--queries", tsv, "--qrels",
                    qrels_file, "--metrics", "ndcg@10,recall@100", "--format", "json")  # fmt: skip
    scores = json.loads(res.stdout)["metrics"]
    assert set(scores) == {"ndcg@10", "recall@100"} and scores["ndcg@10"] > 0
    search.sh("shelflab", "report", "--out", tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text()
    assert '<table id="leaderboard">' in page and '<table id="alias-history">' in page


def test_retrieve_and_evaluate_new_judgments(search, tmp_path):
    tsv, qrels_file = new_judgments(search, tmp_path, 40)
    run_file = tmp_path / "hybrid.trec"
    search.sh("shelflab", "retrieve", "--model", "hybrid", "--queries", tsv, "--k", "50",
              "--out", run_file)  # fmt: skip
    first = run_file.read_text().splitlines()[0].split()
    assert len(first) == 6 and first[1] == "Q0" and first[3] == "1"
    res = search.sh("shelflab", "evaluate", "--qrels", qrels_file, "--run", run_file,
                    "--metrics", "ndcg@10,recall@50,mrr", "--format", "json")  # fmt: skip
    out = json.loads(res.stdout)
    scores = out["metrics"]
    assert set(scores) == {"ndcg@10", "recall@50", "mrr"} and scores["ndcg@10"] > 0
    assert out["queries"]["evaluated"] > 0 and out["queries"]["run_ignored"] == 0


def test_cli_errors_are_one_line(search, tmp_path):
    bad = search.sh("shelflab", "retrieve", "--model", "bm42", "--queries", "x.tsv",
                    "--out", tmp_path / "r.trec", check=False)  # fmt: skip
    assert bad.returncode == 1 and "shelflab: error:" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "r.trec").exists()


def test_leaderboard_from_mlflow(search):
    rows = json.loads(search.sh("shelflab", "leaderboard", "--format", "json").stdout)
    assert {row["model"] for row in rows} == MODELS
    assert [row["ndcg@10"] for row in rows] == sorted(
        (row["ndcg@10"] for row in rows), reverse=True
    )
    baseline = next(row for row in rows if row["model"] == "bm25")
    assert baseline["p_value"] is None
    assert all(0 <= row["p_value"] <= 1 for row in rows if row["model"] != "bm25")


def test_dvc_push_pull_in_a_second_clone(search, tmp_path):
    search.commit("repro")
    search.sh("dvc", "push", "dvc.yaml")  # this track's outputs (the others were never built)
    clone = search.clone(tmp_path / "clone")
    clone.sh("dvc", "pull", "dvc.yaml")
    for name in MODELS:
        assert (clone.dir / "artifacts" / name / "model").is_dir()
        assert (clone.dir / "artifacts" / name / "index").is_dir()
    assert clone.up_to_date()
    assert clone.repro() == set()
