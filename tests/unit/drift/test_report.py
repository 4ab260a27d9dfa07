"""Drift reports on real Amazon 2018 reviews: a random hold-out of the same category and period
is not drifted, another category (Gift_Cards vs All_Beauty) is; the summary schema, the HTML,
the CLI (exit codes, --format json, Parquet and .json.gz inputs, the default reference) and
the errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from shelflab.errors import ConfigError, InputError

COLUMN_KEYS = {"drifted", "statistic", "stattest_threshold", "p_value", "distance", "score"}
EMBEDDING_KEYS = {"method", "score", "threshold", "drifted", "model", "n_reference", "n_batch"}


# ---------------------------------------------------------------------------- the two cases


def test_holdout_of_same_period_is_not_drifted(holdout_result, beauty_split):
    s = holdout_result.summary
    reference, holdout = beauty_split
    assert (s["n_reference"], s["n_batch"]) == (reference.height, holdout.height)
    assert s["dataset_drift"] is False
    assert s["drift_share"] < s["drift_share_threshold"] == 0.5
    emb = s["embeddings"]
    assert emb["drifted"] is False
    assert emb["method"] == "mmd" and emb["score"] < emb["threshold"]
    assert (emb["n_reference"], emb["n_batch"]) == (400, 400)
    assert not s["columns"]["text_chars"]["drifted"]


def test_other_category_is_drifted(gift_result, holdout_result):
    s, hold = gift_result.summary, holdout_result.summary
    assert s["dataset_drift"] is True
    assert s["drift_share"] >= 0.5
    assert s["embeddings"]["drifted"] is True
    # the embedding score and the text columns move clearly, not just across a threshold
    assert s["embeddings"]["score"] > 5 * s["embeddings"]["threshold"]
    assert s["embeddings"]["score"] > 20 * max(hold["embeddings"]["score"], 1e-3)
    for name in ("text_chars", "text_words", "text_sentences"):
        col, before = s["columns"][name], hold["columns"][name]
        assert col["drifted"] and not before["drifted"], name
        assert col["p_value"] < 1e-6 < 0.05 < before["p_value"], name


def test_classifier_method_agrees(beauty_split, gift, drift_cfg, cache_dir):
    """The "model" method (ROC AUC of a classifier) on the same, cached, embeddings."""
    from shelflab.drift.report import run_drift

    reference, holdout = beauty_split
    cfg = {"columns": ["rating"], "embeddings": {**drift_cfg["embeddings"], "method": "model"}}
    hold = run_drift(reference, holdout, cfg, cache_dir=cache_dir).summary["embeddings"]
    other = run_drift(reference, gift, cfg, cache_dir=cache_dir).summary["embeddings"]
    assert hold["threshold"] == other["threshold"] == 0.55
    assert not hold["drifted"] and hold["score"] < 0.55
    assert other["drifted"] and other["score"] > 0.9


# ---------------------------------------------------------------------------- outputs


def test_summary_schema(gift_result):
    import evidently

    from shelflab.drift.features import FEATURES
    from shelflab.drift.report import SUMMARY_KEYS

    s = gift_result.summary
    assert set(s) == set(SUMMARY_KEYS)
    assert json.loads(json.dumps(s)) == s  # plain JSON types only
    assert isinstance(s["dataset_drift"], bool)
    assert s["evidently_version"] == evidently.__version__
    assert list(s["columns"]) == list(FEATURES)
    for name, col in s["columns"].items():
        assert set(col) == COLUMN_KEYS, name
        assert isinstance(col["drifted"], bool) and isinstance(col["statistic"], str)
        assert isinstance(col["stattest_threshold"], float)
        # a p-value test or a distance, never both; score is whichever it is
        assert (col["p_value"] is None) != (col["distance"] is None), name
        assert col["score"] == (col["p_value"] if col["distance"] is None else col["distance"])
    drifted = sum(c["drifted"] for c in s["columns"].values())
    assert s["drift_share"] == drifted / len(s["columns"])
    assert set(s["embeddings"]) == EMBEDDING_KEYS
    assert s["embeddings"]["model"] == "all-MiniLM-L6-v2"


def test_save_writes_report_and_summary(gift_result, tmp_path):
    paths = gift_result.save(tmp_path / "out")
    assert json.loads(paths["summary"].read_text()) == gift_result.summary
    html = paths["report"].read_text(encoding="utf-8")
    assert html == gift_result.html
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:1000]
    # Evidently's widgets for both parts are on the one page
    for text in ("Dataset Drift", "Tabular drift:", "Embedding drift (mmd", "Drift in embeddings"):
        assert text in html, text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "summary.json"]


# ---------------------------------------------------------------------------- features


def test_drift_features_on_hand_made_reviews():
    from shelflab.drift.features import FEATURES, drift_features

    day = 86_400
    reviews = pl.DataFrame(
        {
            "user_id": ["u1", "u2", "u1", "u3"],
            "item_id": ["a", "a", "b", "a"],
            "rating": [5.0, 1.0, 3.0, 4.0],
            "timestamp": [10 * day, 3 * day, 12 * day, 10 * day],
            "summary": ["Great", "Bad!!", "", "ok"],
            "body": ["Works well. Love it.", "broke", "fine 123", ""],
            "verified": [True, False, True, None],
            "votes": [0, 2, None, 1],
            "images": [0, 0, 1, 0],
        }
    )
    f = drift_features(reviews)
    assert f.columns == list(FEATURES) and f.height == 4
    assert f["text_chars"].to_list() == [len("Great\nWorks well. Love it."), 11, 8, 2]
    assert f["text_words"].to_list() == [5, 2, 2, 1]
    assert f["verified"].to_list() == [1, 0, 1, 0]
    assert f["votes"].to_list() == [0, 2, 0, 1]
    # item a: day 3 (first), then day 10 twice (gap 7 for the first in order, 0 for the tie)
    assert f["item_gap_days"][1] is None and f["item_gap_days"][2] is None
    assert sorted([f["item_gap_days"][0], f["item_gap_days"][3]]) == [0.0, 7.0]
    assert f["user_gap_days"].to_list() == [None, None, 2.0, None]
    assert f["text_sentences"].to_list()[0] == 2
    assert 0 < f["text_nonletter_pct"][2] < 100  # "fine 123": digits are not letters


def test_sample_rows_is_seeded_and_keeps_order(beauty):
    from shelflab.drift.report import sample_rows

    a, b = sample_rows(beauty, 50, 7), sample_rows(beauty, 50, 7)
    assert a.equals(b) and a.height == 50
    assert a["row"].is_sorted()
    assert not a.equals(sample_rows(beauty, 50, 8))
    assert sample_rows(beauty, None, 0) is beauty


# ---------------------------------------------------------------------------- errors


def test_input_errors(beauty):
    from shelflab.drift.report import run_drift

    ok = beauty.head(20)
    with pytest.raises(InputError, match=r"batch: 0 review\(s\): too few"):
        run_drift(ok, beauty.head(0))
    with pytest.raises(InputError, match=r"ref\.parquet: missing column.*body"):
        run_drift(ok.drop("body"), ok, labels=("ref.parquet", "b"))
    with pytest.raises(InputError, match=r"wrong type: rating \(String\)"):
        run_drift(ok, ok.with_columns(pl.col("rating").cast(pl.String)))
    with pytest.raises(InputError, match="polars DataFrame"):
        run_drift(ok.to_pandas(), ok)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"embeddings": {"method": "cosine"}}, "method 'cosine' unknown"),
        ({"embeddings": {"max_row": 10}}, "unknown key.*max_row"),
        ({"columns": ["rating", "length"]}, "unknown feature.*length"),
        ({"drift_share": 1.5}, "drift_share"),
        ({"embeddings": {"max_rows": 1}}, "max_rows"),
        ({"embeddings": "mmd"}, "must be a mapping"),
    ],
)
def test_config_errors(cfg, message):
    from shelflab.drift.report import resolve_config

    with pytest.raises(ConfigError, match=message):
        resolve_config(cfg)


def test_config_defaults_and_pipeline_keys():
    from shelflab.drift.report import DEFAULT_CONFIG, resolve_config

    assert resolve_config(None) == DEFAULT_CONFIG
    # the stage's own keys in the same params section are left alone
    cfg = resolve_config(
        {"batches": {"x": {}}, "model": "champion", "embeddings": {"max_rows": 10}}
    )
    assert cfg["embeddings"]["max_rows"] == 10 and cfg["embeddings"]["method"] == "mmd"
    assert "batches" not in cfg


# ---------------------------------------------------------------------------- CLI


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    from shelflab.cli.main import main

    try:
        code = main(argv)
    except SystemExit as exc:  # --fail-on-drift and argparse exit this way
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_holdout_with_default_reference(
    drift_root, beauty_split, holdout_result, tmp_path, monkeypatch, capsys
):
    """No --reference: the train split of the reviews track under the repo root; a Parquet
    batch; --format json prints the summary alone; no drift -> exit 0 with --fail-on-drift."""
    _, holdout = beauty_split
    batch = tmp_path / "holdout.parquet"
    holdout.write_parquet(batch)
    monkeypatch.chdir(drift_root)
    out_dir = tmp_path / "out"
    argv = ["drift", "--batch", str(batch), "--out", str(out_dir), "--format", "json"]
    code, out, _ = _cli([*argv, "--fail-on-drift"], capsys)
    assert code == 0
    printed = json.loads(out)
    assert printed == json.loads((out_dir / "summary.json").read_text())
    assert printed == holdout_result.summary  # same rows, seeds and cache -> same numbers
    assert (out_dir / "report.html").stat().st_size > 10_000


def test_cli_other_category_fails_on_drift(
    drift_root, beauty_split, gift_path, gift_result, tmp_path
):
    """A real process: a .json.gz batch, exit 3 with --fail-on-drift, stdout pure JSON."""
    from shelflab.cli.drift import EXIT_DRIFT

    reference, _ = beauty_split
    ref_path = tmp_path / "reference.parquet"
    reference.write_parquet(ref_path)
    out_dir = tmp_path / "out"
    argv = ["--reference", str(ref_path), "--batch", str(gift_path)]
    argv += ["--out", str(out_dir), "--format", "json", "--fail-on-drift"]
    proc = subprocess.run(
        [sys.executable, "-m", "shelflab.cli.main", "drift", *argv],
        cwd=drift_root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        timeout=600,
    )
    assert proc.returncode == EXIT_DRIFT == 3, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["dataset_drift"] is True and summary["embeddings"]["drifted"] is True
    assert summary == json.loads((out_dir / "summary.json").read_text())
    assert summary == gift_result.summary  # the library on the same reviews, in-process
    assert "Traceback" not in proc.stderr


def test_cli_text_format(gift_result):
    from shelflab.cli.drift import format_text

    text = format_text(gift_result.summary, Path("out"))
    assert text.startswith("dataset drift: DRIFT")
    assert "text_chars" in text and "embeddings" in text and "out/report.html" in text


def test_cli_errors(drift_root, tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nope.json.gz"
    out = str(tmp_path / "out")
    code, stdout, err = _cli(["drift", "--batch", str(missing), "--out", out], capsys)
    assert code == 1 and stdout == ""
    assert err.startswith("shelflab: error:") and "nope.json.gz" in err
    assert len(err.strip().splitlines()) == 1

    code, _, err = _cli(["drift", "--batch", str(tmp_path / "b.parquet"), "--out", out], capsys)
    assert code == 1 and "b.parquet: file not found" in err

    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"review_id": ["r1"], "rating": [5.0]}).write_parquet(bad)
    monkeypatch.chdir(drift_root)
    code, _, err = _cli(["drift", "--batch", str(bad), "--out", out], capsys)
    assert code == 1 and "bad.parquet: missing column(s)" in err

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    code, _, err = _cli(["drift", "--batch", str(bad), "--out", str(a_file)], capsys)
    assert code == 1 and "is not a directory" in err

    monkeypatch.chdir(tmp_path)  # no params.yaml, no reviews track: no default reference
    code, _, err = _cli(["drift", "--batch", str(bad), "--out", out], capsys)
    assert code == 1 and "no default reference" in err and "--reference" in err
    assert not (tmp_path / "out").exists()


def test_cli_settings_from_params(drift_root, drift_cfg, tmp_path):
    from shelflab.cli.drift import drift_config

    assert drift_config(None, drift_root) == drift_cfg  # the repo root's params.yaml
    assert drift_config(str(drift_root / "params.yaml"), tmp_path) == drift_cfg
    assert drift_config(None, tmp_path) == {}  # no params.yaml: built-in defaults
    with pytest.raises(ConfigError, match="params file not found"):
        drift_config(str(tmp_path / "missing.yaml"), tmp_path)


def test_cli_help_documents_exit_code(capsys):
    code, out, _ = _cli(["drift", "--help"], capsys)
    assert code == 0
    assert "--fail-on-drift" in out and "3 dataset drift found" in out
    code, out, _ = _cli(["--help"], capsys)
    assert code == 0 and "drift" in out
