"""Next-item track (tracks/nextitem) end to end, from tests/e2e/params/nextitem.yaml: leave-one-out
on the Beauty excerpt, popularity, itemknn and SASRec evaluated by full ranking, no history item
in any run, the champion registered with a history signature and answering through MLflow, and
an edit of one family's module rerunning that family's stages only."""

import json

import polars as pl
import pytest

pytestmark = [pytest.mark.slow]

MODELS = {"popularity", "itemknn", "sasrec"}
EDITED = "shelflab/models/itemknn.py"
PER_MODEL = ("tune", "train", "index", "evaluate")


@pytest.fixture(scope="module")
def nextitem(reproduce):
    return reproduce("tracks/nextitem", "nextitem.yaml")


def test_next_item_track(nextitem, python_bin, tmp_path):
    track = nextitem.dir
    models = nextitem.models()
    assert set(models) == MODELS
    expected = {"code", "ingest", "leaderboard", "promote"}
    expected |= {f"{s}@{m}" for s in PER_MODEL for m in models}
    assert expected <= nextitem.first_run
    # this track only: the search pipeline (the root dvc.yaml) did not run
    assert not (nextitem.root / "dvc.lock").exists()
    ingest = nextitem.json("metrics", "ingest.json")
    assert ingest["users"] == 2317 and ingest["queries"] == {
        s: 2317 for s in ("train", "valid", "test")
    }
    ndcg = {}
    for name in models:
        test = nextitem.json("metrics", "models", f"{name}.json")["test"]
        assert 0 <= test["ndcg@10"]["mean"] <= test["hit@10"]["mean"] <= 1
        ndcg[name] = test["ndcg@10"]["mean"]
    assert ndcg["itemknn"] > ndcg["popularity"] > 0
    queries = pl.read_parquet(track / "data" / "enriched" / "queries.parquet")
    # item ids relabelled at ingest (data.relabel_seed), the map back to the file's ids kept
    id_map = pl.read_parquet(track / "data" / "processed" / "item_ids.parquet")
    assert id_map.height == ingest["items"] and id_map["item_id"].str.starts_with("i").all()
    source_ids = set(id_map["source_item_id"])
    assert queries["history"].explode().str.starts_with("i").all()
    for name in models:
        run = pl.read_parquet(track / "runs" / name / "test.parquet")
        repeats = run.join(queries.select("query_id", "history"), on="query_id").filter(
            pl.col("history").list.contains(pl.col("item_id"))
        )
        assert repeats.height == 0, name
    promotion = nextitem.json("metrics", "promotion.json")
    assert promotion["champion_model"] in models
    code = (
        "import json, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/shelflab-nextitem-beauty-sample@champion')\n"
        "out = m.predict(pd.DataFrame({'query_id': ['u'], 'history': [['1', '4', '5']]}),"
        " params={'k': 5})\n"
        "print(json.dumps(out['item_id'].tolist()))\n"
    )
    uri = f"MLFLOW_TRACKING_URI=sqlite:///{nextitem.root / 'mlflow.db'}"
    items = json.loads(nextitem.sh("env", uri, python_bin, "-c", code).stdout)
    # the registered pipeline takes and returns the file's item ids
    assert len(items) == 5 and not {"1", "4", "5"} & set(items) and set(items) <= source_ids
    # the CLI on new histories (TSV: query_id, item ids by spaces)
    tsv, out = tmp_path / "new_users.tsv", tmp_path / "new.trec"
    tsv.write_text("a\t1 4  5\nb\t999999 20\n")
    nextitem.sh("shelflab", "retrieve", "--model", "itemknn", "--queries", tsv,
                "--out", out, "--k", "7")  # fmt: skip
    rows = [line.split() for line in out.read_text().splitlines()]
    assert {r[0] for r in rows} == {"a", "b"} and len(rows) == 14
    assert not {r[2] for r in rows if r[0] == "a"} & {"1", "4", "5"}
    assert {r[2] for r in rows} <= source_ids  # source ids out, as they went in


def test_second_repro_is_noop(nextitem):
    assert nextitem.repro() == set()
    assert nextitem.up_to_date()


def test_editing_a_family_module_reruns_only_its_stages(nextitem):
    """A comment line appended to itemknn.py: `dvc repro` reruns the code manifests and exactly
    the stages whose manifests list the file (itemknn's own, promote); popularity's and
    SASRec's stages stay as they are. The retrained itemknn is a new registered version that
    challenges the champion."""
    before = nextitem.json("metrics", "promotion.json")
    source = nextitem.root / EDITED
    source.write_text(source.read_text() + "# edited by tests/e2e/test_nextitem.py\n")
    ran = nextitem.repro()
    listed = {
        manifest.stem
        for manifest in (nextitem.dir / "manifests").glob("*.json")
        if EDITED in json.loads(manifest.read_text())["files"]
    }
    assert {f"{s}@itemknn" for s in PER_MODEL} <= listed
    assert not {s for s in listed if s.endswith(("@popularity", "@sasrec"))}
    # the leaderboard reruns only if the per-query results moved (same seed: they do not)
    assert {"code"} | listed <= ran <= {"code", "leaderboard"} | listed
    assert nextitem.up_to_date()
    # the best model of the run is itemknn again, as a new version against the first champion
    after = nextitem.json("metrics", "promotion.json")
    assert before["candidate_model"] == after["candidate_model"] == "itemknn"
    assert after["candidate_version"] != before["candidate_version"]
    assert after["champion_before"] == before["champion_after"]
    assert after["champion_model"] in MODELS
