"""`shelflab promote | history | rollback` and `shelflab evaluate --model` (sqlite store)."""

from __future__ import annotations

import json

import pytest

from shelflab.cli.main import main
from shelflab.evaluation.harness import evaluate


@pytest.fixture
def cli_store(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    return store


@pytest.fixture
def gate_without_timing(repo_root, tmp_path, monkeypatch):
    """The repo's params.yaml with a promote gate that reads no latency ratio: the models'
    latencies were measured on cores the other test workers share, so a ratio guard would
    make the decision depend on the machine's load."""
    import yaml
    from plugins.registry import PROMOTE_CFG

    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["promote"] = PROMOTE_CFG
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)


def test_promote_history_rollback_commands(
    cli_store, gate_without_timing, name, built, publisher, capsys
):
    v1 = publisher(name, built["dense"])
    v2 = publisher(name, built["bm25"])
    assert main(["promote", "--name", name, "--candidate", v1]) == 0
    assert "becomes champion" in capsys.readouterr().out
    assert main(["promote", "--name", name, "--candidate", v2, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["champion_after"] == v2 and out["decision"]["promote"] is True
    assert out["decision"]["p_value"] < 0.05
    assert main(["history", "--name", name]) == 0
    table = capsys.readouterr().out
    assert "initial" in table and "promote" in table and "challenger" in table
    assert main(["rollback", "--name", name, "--why", "test"]) == 0
    assert f"from version {v2} to {v1}" in capsys.readouterr().out
    assert main(["history", "--name", name, "--format", "json"]) == 0
    moves = json.loads(capsys.readouterr().out)
    champion_move, challenger_move = moves[-2], moves[-1]
    assert (champion_move["alias"], champion_move["action"], champion_move["why"]) == (
        "champion",
        "rollback",
        "test",
    )
    assert (challenger_move["alias"], challenger_move["to"]) == ("challenger", v2)


def test_evaluate_registered_champion_on_new_judgments(
    cli_store, name, built, publisher, sample_all, tmp_path, capsys
):
    import mlflow

    v = publisher(name, built["bm25"])
    main(["promote", "--name", name, "--candidate", v])
    capsys.readouterr()
    # a judgment set the model never saw as such: 40 sample queries, written as a team would
    queries = sample_all["queries"].sort("query_id").head(40)
    tsv = tmp_path / "new.tsv"
    tsv.write_text("".join(f"{q}\t{t}\n" for q, t in queries.select("query_id", "raw_text").rows()))
    qrels = sample_all["qrels"].join(queries.select("query_id"), on="query_id", how="semi")
    qrels_path = tmp_path / "new.qrels"
    qrels_path.write_text(
        "".join(
            f"{q} 0 {i} {g:g}\n" for q, i, g in qrels.select("query_id", "item_id", "grade").rows()
        )
    )
    args = [
        "evaluate",
        "--model",
        f"models:/{name}@champion",
        "--queries",
        str(tsv),
        "--qrels",
        str(qrels_path),
        "--metrics",
        "ndcg@10,recall@100",
        "--format",
        "json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    got = out["metrics"]
    own = (
        built["bm25"]
        .report.runs["test"]
        .join(queries.select("query_id"), on="query_id", how="semi")
    )
    expected = evaluate(qrels, own, ["ndcg@10", "recall@100"])
    want = expected.means
    assert got == pytest.approx(want)
    assert out["queries"] == expected.counts()  # e.g. queries bm25 finds nothing for
    # an evaluation run linked to the version
    runs = mlflow.search_runs(experiment_names=[f"{name}-evaluations"], output_format="list")
    assert runs[0].data.tags["model_version"] == v
    assert runs[0].data.metrics["eval_ndcg_at_10"] == pytest.approx(want["ndcg@10"])


def test_evaluate_model_bad_input(cli_store, name, built, publisher, tmp_path, capsys):
    v = publisher(name, built["bm25"])
    tsv = tmp_path / "q.tsv"
    tsv.write_text("q1\tdrill\n")
    qrels = tmp_path / "q.qrels"
    qrels.write_text("other 0 x 1\n")
    base = ["evaluate", "--queries", str(tsv), "--qrels", str(qrels)]
    assert main([*base, "--model", f"models:/{name}/{v}"]) == 1
    assert "no query id in common" in capsys.readouterr().err
    qrels.write_text("q1 0 x 1\n")
    assert main([*base, "--model", f"models:/{name}@nosuchalias"]) == 1
    assert "nosuchalias" in capsys.readouterr().err
    assert main([*base, "--model", "models:/nope/1"]) == 1
    assert "nope" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--qrels", str(qrels), "--model", f"models:/{name}/{v}"])
    assert main(["promote", "--name", "nope", "--candidate", "1"]) == 1
    assert "no registered model 'nope'" in capsys.readouterr().err
    assert main(["history", "--name", "nope"]) == 1
    assert "no registered model 'nope'" in capsys.readouterr().err
