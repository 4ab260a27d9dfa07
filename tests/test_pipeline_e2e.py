"""End to end on the shipped sample: real DVC in a temp git repo, real MLflow (sqlite), real
models. `dvc repro -P` builds both tracks (search at the root, reviews in tracks/reviews),
registers every pipeline, promotes a champion per track and writes the drift reports; a second
run is a no-op; a change to one model's params reruns only that model (and the composites that
embed it); the CLI retrieves for new queries and scores them, also through the registered
champion; `dvc push` / `dvc pull` give a second clone the outputs without recomputing."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
REVIEWS = Path("tracks") / "reviews"
NEXT_ITEM = Path("tracks") / "nextitem"


def sh(args, cwd, check=True):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, repo_root):
    work = tmp_path_factory.mktemp("e2e") / "repo"
    files = sh(["git", "ls-files", "-co", "--exclude-standard"], repo_root).stdout.split()
    for rel in files:
        src = repo_root / rel
        if src.is_file() and not rel.startswith(("tests/", "bench/")):
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / rel)
    for track in (work, work / REVIEWS, work / NEXT_ITEM):
        for generated in ("dvc.lock", "metrics", "plots", "reports", "tuned"):
            target = track / generated
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    trim_budgets(work / "params.yaml")
    trim_review_budgets(work / REVIEWS / "params.yaml")
    trim_next_item_budgets(work / NEXT_ITEM / "params.yaml")
    sh(["git", "init", "-q"], work)
    remote = tmp_path_factory.mktemp("dvc-remote")
    sh(["dvc", "remote", "modify", "--local", "storage", "url", str(remote)], work)
    sh(["git", "add", "-A"], work)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], work)
    first = sh(["dvc", "repro", "-P"], work)
    return work, first.stdout


def trim_budgets(params: Path) -> None:
    """Smaller tuning and training budgets than the shipped params (the CI runs this once;
    the shipped values are what the README's timings are for). Text edits keep the YAML
    anchors, so composites still embed their components' params."""
    text = re.sub(r"(\n      trials: )\d+", r"\g<1>2", params.read_text())
    text = re.sub(r"(fixed: \{max_train_pairs: )\d+", r"\g<1>128", text)
    text = re.sub(r"(fixed: \{max_train_queries: )\d+", r"\g<1>40", text)
    for anchor, extra in (
        ("    miner: {bm25: *bm25}", "    max_train_pairs: 256"),
        ("  cross_encoder:", "    max_train_queries: 60"),
    ):
        assert anchor in text, f"params.yaml changed: {anchor!r} not found"
        text = text.replace(anchor, f"{anchor}\n{extra}", 1)
    params.write_text(text)


def trim_review_budgets(params: Path) -> None:
    text = re.sub(r"(\n      trials: )\d+", r"\g<1>2", params.read_text())
    text, n = re.subn(r"(\n    max_train_pairs: )\d+", r"\g<1>200", text)
    assert n == 1, f"{params} changed: biencoder_ft max_train_pairs not found"
    params.write_text(text)


def trim_next_item_budgets(params: Path) -> None:
    text = re.sub(r"(\n      trials: )\d+", r"\g<1>2", params.read_text())
    text, n = re.subn(r"(\n    epochs: )\d+", r"\g<1>3", text)
    assert n == 3, f"{params} changed: sasrec / sasrec_semantic / two_tower epochs not found"
    text, n = re.subn(r"(\n    rq_epochs: )\d+", r"\g<1>20", text)
    assert n == 1, f"{params} changed: sasrec_semantic rq_epochs not found"
    text, n = re.subn(r"fixed: \{epochs: \d+", "fixed: {epochs: 2", text)
    assert n == 2, f"{params} changed: tune.fixed epochs not found"
    params.write_text(text)


def new_judgments(work, tmp_path, n):
    """The first `n` sample queries under new ids, as a team would hand them in: a TSV query
    file and TREC qrels."""
    queries = pl.read_parquet(work / "data" / "processed" / "queries.parquet").head(n)
    qrels = pl.read_parquet(work / "data" / "processed" / "qrels.parquet").join(
        queries.select("query_id"), on="query_id", how="semi"
    )
    tsv = tmp_path / "new.tsv"
    tsv.write_text("".join(f"new-{q}\t{t}\n" for q, t in queries.select("query_id", "text").rows()))
    qrels_file = tmp_path / "new.qrels"
    qrels_file.write_text("".join(f"new-{q} 0 {d} {g}\n" for q, d, g in qrels.rows()))
    return tsv, qrels_file


def model_names(work):
    return list(yaml.safe_load((work / "params.yaml").read_text())["models"])


def test_repro_builds_every_model(pipeline):
    work, out = pipeline
    models = model_names(work)
    assert {"bm25", "dense", "hybrid", "biencoder_ft", "cross_encoder", "xgb_ltr"} <= set(models)
    expected = {"ingest", "split", "enrich", "leaderboard", "promote"} | {
        f"{s}@{m}" for s in ("train", "index", "evaluate") for m in models
    }
    assert expected <= ran_stages(out)
    for name in models:
        summary = json.loads((work / "metrics" / "models" / f"{name}.json").read_text())
        test = summary["test"]
        assert 0 < test["ndcg@10"]["mean"] <= 1
        assert test["ndcg@10"]["ci_low"] <= test["ndcg@10"]["mean"] <= test["ndcg@10"]["ci_high"]
        run = pl.read_parquet(work / "runs" / name / "test.parquet")
        assert run.group_by("query_id").len()["len"].max() <= 100
        assert (work / "runs" / name / "test.trec").is_file()
        latency = test["_latency"]
        assert latency["queries"] > 0 and 0 < latency["p50_ms"] <= latency["p95_ms"]
    assert (work / "data" / "processed" / "quarantine.parquet").is_file()
    board = (work / "reports" / "leaderboard.md").read_text()
    assert all(name in board for name in models)
    # the Chroma collection lives in the dense index directory
    assert any((work / "artifacts" / "dense" / "index").rglob("chroma.sqlite3"))
    # every pipeline is a registered version; the best of the run became the first champion
    versions = {
        json.loads((work / "metrics" / "models" / f"{m}.json").read_text())["_mlflow"]["version"]
        for m in models
    }
    assert len(versions) == len(models)
    promotion = json.loads((work / "metrics" / "promotion.json").read_text())
    assert promotion["promoted"] and promotion["champion_before"] is None
    assert promotion["champion_after"] == promotion["candidate_version"] in versions
    moves = json.loads(sh(["shelflab", "history", "--format", "json"], work).stdout)
    assert [(m["alias"], m["to"], m["action"]) for m in moves] == [
        ("champion", promotion["candidate_version"], "initial")
    ]


def test_second_repro_is_noop(pipeline):
    work, _ = pipeline
    again = sh(["dvc", "repro", "-P"], work)
    assert ran_stages(again.stdout) == set()
    assert "up to date" in sh(["dvc", "status"], work).stdout


def stale_stages(work) -> set[str]:
    out = sh(["dvc", "status", "--json"], work).stdout
    return set(json.loads(out or "{}"))


def test_changing_one_model_reruns_only_it(pipeline):
    work, _ = pipeline
    params = work / "params.yaml"
    original = params.read_text()
    # a bm25 param outside its tuning space: bm25 and every composite that embeds it go stale
    params.write_text(original.replace("stopwords: en", "stopwords: none", 1))
    stale = stale_stages(work)
    params.write_text(original)
    assert {"tune@bm25", "train@bm25", "tune@hybrid", "train@hybrid", "train@xgb_ltr"} <= stale
    assert {"train@biencoder_ft", "train@cross_encoder"} <= stale  # miner / first stage
    assert not any(stage.endswith("@dense") for stage in stale)
    assert not stale & {"ingest", "split", "enrich"}
    # a model nothing embeds: only its own stages (and the leaderboard, promote) rerun
    changed = original.replace("early_stopping_rounds: 30", "early_stopping_rounds: 25", 1)
    assert changed != original, "params.yaml changed: xgb_ltr early_stopping_rounds not found"
    params.write_text(changed)
    ran = ran_stages(sh(["dvc", "repro"], work).stdout)
    own = {f"{s}@xgb_ltr" for s in ("tune", "train", "index", "evaluate")} | {"promote"}
    # the leaderboard reruns only if the per-query results changed (same booster: they don't)
    assert own <= ran <= own | {"leaderboard"}
    # the retrained xgb_ltr is a new version; it ties the champion at best, so it is refused
    promotion = json.loads((work / "metrics" / "promotion.json").read_text())
    assert promotion["candidate_model"] in model_names(work)


def test_registered_champion_on_new_judgments_and_report(pipeline, tmp_path):
    work, _ = pipeline
    tsv, qrels_file = new_judgments(work, tmp_path, 30)
    uri = "models:/shelflab-search-homedepot-sample@champion"
    res = sh(
        [
            "shelflab",
            "evaluate",
            "--model",
            uri,
            "--queries",
            str(tsv),
            "--qrels",
            str(qrels_file),
            "--metrics",
            "ndcg@10,recall@100",
            "--format",
            "json",
        ],
        work,
    )
    scores = json.loads(res.stdout)
    assert set(scores) == {"ndcg@10", "recall@100"} and scores["ndcg@10"] > 0
    sh(["shelflab", "report", "--out", str(tmp_path / "report")], work)
    page = (tmp_path / "report" / "index.html").read_text()
    assert '<table id="leaderboard">' in page and '<table id="alias-history">' in page


def test_dvc_push_pull_in_a_second_clone(pipeline, tmp_path):
    work, _ = pipeline
    sh(["git", "add", "-A"], work)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro"], work)
    sh(["dvc", "push"], work)
    remote = sh(["dvc", "remote", "list", "--local"], work).stdout.split()[1]
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(work), str(clone)], tmp_path)
    sh(["dvc", "remote", "modify", "--local", "storage", "url", remote], clone)
    sh(["dvc", "pull"], clone)
    assert (clone / "artifacts" / "xgb_ltr" / "model").is_dir()
    assert (clone / REVIEWS / "artifacts" / "biencoder_ft" / "model").is_dir()
    assert (clone / NEXT_ITEM / "artifacts" / "sasrec" / "model").is_dir()
    assert "up to date" in sh(["dvc", "status"], clone).stdout
    assert ran_stages(sh(["dvc", "repro", "-P"], clone).stdout) == set()


def test_retrieve_and_evaluate_new_judgments(pipeline, tmp_path):
    work, _ = pipeline
    tsv, qrels_file = new_judgments(work, tmp_path, 40)
    run_file = tmp_path / "hybrid.trec"
    sh(
        [
            "shelflab",
            "retrieve",
            "--model",
            "hybrid",
            "--queries",
            str(tsv),
            "--k",
            "50",
            "--out",
            str(run_file),
        ],
        work,
    )
    first = run_file.read_text().splitlines()[0].split()
    assert len(first) == 6 and first[1] == "Q0" and first[3] == "1"
    res = sh(
        [
            "shelflab",
            "evaluate",
            "--qrels",
            str(qrels_file),
            "--run",
            str(run_file),
            "--metrics",
            "ndcg@10,recall@50,mrr",
            "--format",
            "json",
        ],
        work,
    )
    scores = json.loads(res.stdout)
    assert set(scores) == {"ndcg@10", "recall@50", "mrr"} and scores["ndcg@10"] > 0


def test_cli_errors_are_one_line(pipeline, tmp_path):
    work, _ = pipeline
    bad = sh(
        [
            "shelflab",
            "retrieve",
            "--model",
            "bm42",
            "--queries",
            "x.tsv",
            "--out",
            str(tmp_path / "r.trec"),
        ],
        work,
        check=False,
    )
    assert bad.returncode == 1 and "shelflab: error:" in bad.stderr
    assert not (tmp_path / "r.trec").exists()


def test_leaderboard_from_mlflow(pipeline):
    work, _ = pipeline
    out = sh(["shelflab", "leaderboard", "--format", "json"], work).stdout
    rows = json.loads(out)
    assert {row["model"] for row in rows} == set(model_names(work))
    assert [row["ndcg@10"] for row in rows] == sorted(
        (row["ndcg@10"] for row in rows), reverse=True
    )
    baseline = next(row for row in rows if row["model"] == "bm25")
    assert baseline["p_value"] is None
    assert all(0 <= row["p_value"] <= 1 for row in rows if row["model"] != "bm25")


# --------------------------------------------------------------------------- review track


def review_json(work, *parts):
    return json.loads((work / REVIEWS / Path(*parts)).read_text())


def test_review_track_builds_with_a_time_split_and_quarantine(pipeline):
    work, out = pipeline
    track = work / REVIEWS
    models = list(yaml.safe_load((track / "params.yaml").read_text())["models"])
    assert {"bm25", "dense", "hybrid", "biencoder_ft", "xgb_ltr"} <= set(models)
    ran = ran_stages(out)
    assert {f"tracks/reviews/dvc.yaml:{s}" for s in ("ingest", "split", "enrich", "promote")} <= ran
    ingest = review_json(work, "metrics", "ingest.json")
    assert ingest["quarantined_by_reason"]["duplicate review"] > 0  # the real file repeats reviews
    quarantine = pl.read_parquet(track / "data" / "processed" / "quarantine.parquet")
    assert quarantine.height == ingest["quarantined"]
    # no later review in an earlier period
    queries = pl.read_parquet(track / "data" / "processed" / "queries.parquet")
    splits = pl.read_parquet(track / "data" / "processed" / "splits.parquet")
    span = (
        queries.join(splits, on="query_id")
        .group_by("split")
        .agg(pl.col("timestamp").min().alias("lo"), pl.col("timestamp").max().alias("hi"))
    )
    lo_hi = {s: (lo, hi) for s, lo, hi in span.iter_rows()}
    assert lo_hi["train"][1] < lo_hi["valid"][0] and lo_hi["valid"][1] < lo_hi["test"][0]
    items = pl.read_parquet(track / "data" / "enriched" / "items.parquet")
    assert items["text"].str.contains("[review keywords]", literal=True).sum() > 0
    for name in models:
        summary = review_json(work, "metrics", "models", f"{name}.json")
        for split in ("valid", "test"):
            for metric in ("recall@1", "recall@10", "recall@100", "mrr", "ndcg@10"):
                assert 0 <= summary[split][metric]["mean"] <= 1
    promotion = review_json(work, "metrics", "promotion.json")
    assert promotion["champion_model"] in models


def test_review_drift_stages_and_cli(pipeline, tmp_path):
    work, _ = pipeline
    other = review_json(work, "reports", "drift", "gift_cards", "summary.json")
    same = review_json(work, "reports", "drift", "test_period", "summary.json")
    assert other["dataset_drift"] and other["embeddings"]["drifted"]
    assert other["model"]["queries"] == 0 and "note" in other["model"]  # no Beauty item in it
    assert same["model"]["queries"] > 0
    assert same["model"]["comparison"]["method"] == "paired"  # the test period is the test split
    assert same["embeddings"]["score"] != other["embeddings"]["score"]
    for batch in ("gift_cards", "test_period"):
        assert (work / REVIEWS / "reports" / "drift" / batch / "report.html").stat().st_size > 0
    # the CLI: default reference = the pipeline's training-period reviews
    batch = work / "data" / "sample" / "amazon" / "Gift_Cards_5.sample.json.gz"
    res = sh(
        ["shelflab", "drift", "--batch", str(batch), "--out", str(tmp_path / "d"),
         "--format", "json", "--fail-on-drift"],
        work / REVIEWS,
        check=False,
    )  # fmt: skip
    assert res.returncode == 3, res.stderr
    assert json.loads(res.stdout)["dataset_drift"] is True
    assert (tmp_path / "d" / "report.html").is_file()
    # the model side from the CLI: the champion on every review of the sample vs its test split
    res = sh(
        ["shelflab", "drift", "--batch", "data/processed/reviews.parquet", "--model", "champion",
         "--out", str(tmp_path / "m"), "--format", "json"],
        work / REVIEWS,
    )  # fmt: skip
    model = json.loads(res.stdout)["model"]
    assert model["model"] == review_json(work, "metrics", "promotion.json")["champion_model"]
    assert model["comparison"]["method"] == "two-sample permutation"
    assert model["comparison"]["batch"]["n"] == model["queries"] > 0


def test_next_item_track(pipeline):
    """Leave-one-out on the Beauty excerpt: every model evaluated by full ranking, no history item
    in any run, the champion registered with a history signature and answering through MLflow."""
    work, out = pipeline
    track = work / NEXT_ITEM
    models = list(yaml.safe_load((track / "params.yaml").read_text())["models"])
    assert {"popularity", "itemknn", "sasrec", "sasrec_semantic", "two_tower"} <= set(models)
    stages = {"ingest", "leaderboard", "promote"} | {f"evaluate@{m}" for m in models}
    assert {f"tracks/nextitem/dvc.yaml:{s}" for s in stages} <= ran_stages(out)
    ingest = json.loads((track / "metrics" / "ingest.json").read_text())
    assert ingest["users"] == 2317 and ingest["queries"] == {
        s: 2317 for s in ("train", "valid", "test")
    }
    ndcg = {}
    for name in models:
        test = json.loads((track / "metrics" / "models" / f"{name}.json").read_text())["test"]
        assert 0 <= test["ndcg@10"]["mean"] <= test["hit@10"]["mean"] <= 1
        ndcg[name] = test["ndcg@10"]["mean"]
    assert ndcg["itemknn"] > ndcg["popularity"] > 0
    queries = pl.read_parquet(track / "data" / "enriched" / "queries.parquet")
    for name in models:
        run = pl.read_parquet(track / "runs" / name / "test.parquet")
        repeats = run.join(queries.select("query_id", "history"), on="query_id").filter(
            pl.col("history").list.contains(pl.col("item_id"))
        )
        assert repeats.height == 0, name
    promotion = json.loads((track / "metrics" / "promotion.json").read_text())
    assert promotion["champion_model"] in models
    code = (
        "import json, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/shelflab-nextitem-beauty-sample@champion')\n"
        "out = m.predict(pd.DataFrame({'query_id': ['u'], 'history': [['1', '4', '5']]}),"
        " params={'k': 5})\n"
        "print(json.dumps(out['item_id'].tolist()))\n"
    )
    env_uri = ["env", f"MLFLOW_TRACKING_URI=sqlite:///{work / 'mlflow.db'}"]
    items = json.loads(sh([*env_uri, str(BIN / "python"), "-c", code], work).stdout)
    assert len(items) == 5 and not {"1", "4", "5"} & set(items)
    # the CLI on new histories (TSV: query_id, item ids by spaces)
    tsv = track / "new_users.tsv"
    tsv.write_text("a\t1 4  5\nb\t999999 20\n")
    sh(["shelflab", "retrieve", "--model", "itemknn", "--queries", str(tsv),
        "--out", str(track / "new.trec"), "--k", "7"], track)  # fmt: skip
    rows = [line.split() for line in (track / "new.trec").read_text().splitlines()]
    assert {r[0] for r in rows} == {"a", "b"} and len(rows) == 14
    assert not {r[2] for r in rows if r[0] == "a"} & {"1", "4", "5"}
