"""Space syntax: nested keys, list elements, split weights; validation errors."""

from __future__ import annotations

import pytest

from shelflab.errors import ConfigError
from shelflab.tuning.settings import model_config
from shelflab.tuning.spaces import apply_params, check_space
from shelflab.tuning.tuned import apply_tuned

HYBRID = {
    "family": "hybrid",
    "components": {"bm25": {"family": "bm25", "k1": 1.2}, "dense": {"family": "dense"}},
    "method": "weighted",
    "weights": [0.6, 0.4],
}


def test_apply_params_nested_list_and_split():
    space = {"weights": {"type": "split", "low": 0.0, "high": 1.0}}
    out = apply_params(
        HYBRID,
        {"components.bm25.k1": 0.9, "method": "rrf", "weights": 0.75},
        space,
    )
    assert out["components"]["bm25"]["k1"] == 0.9
    assert out["method"] == "rrf"
    assert out["weights"] == [0.75, 0.25]
    assert HYBRID["weights"] == [0.6, 0.4]  # input untouched
    assert HYBRID["components"]["bm25"]["k1"] == 1.2
    assert apply_params(HYBRID, {"weights[1]": 0.1})["weights"] == [0.6, 0.1]
    # a split on a list param absent from the spec still works when the space says so
    assert apply_params({"family": "hybrid"}, {"weights": 0.3}, space)["weights"] == [0.3, 0.7]


def test_apply_params_errors():
    with pytest.raises(ConfigError, match=r"weights\[5\]"):
        apply_params(HYBRID, {"weights[5]": 1.0})
    with pytest.raises(ConfigError, match="does not address a mapping"):
        apply_params(HYBRID, {"method.x": 1})


@pytest.mark.parametrize(
    "space, match",
    [
        ({}, "non-empty"),
        ({"k1": {"type": "normal"}}, "type one of"),
        ({"k1": {"type": "float", "low": 2, "high": 1}}, "low 2 > high 1"),
        ({"k1": {"type": "int", "low": 1.5, "high": 3}}, "integers"),
        ({"m": {"type": "categorical"}}, "choices"),
        ({"k1": {"type": "float", "low": 0, "high": 1, "lo": 0}}, "unknown option"),
    ],
)
def test_check_space_errors(space, match):
    with pytest.raises(ConfigError, match=match):
        check_space("bm25", space)


def test_model_config_defaults_and_overrides():
    cfg = model_config(
        {
            "seed": 7,
            "models": {
                "bm25": {
                    "trials": 3,
                    "seed": 9,
                    "space": {"k1": {"type": "float", "low": 0.1, "high": 2}},
                }
            },
        },
        "bm25",
    )
    assert (cfg["trials"], cfg["seed"], cfg["metric"], cfg["split"]) == (3, 9, "ndcg@10", "valid")
    with pytest.raises(ConfigError, match="no entry 'dense'"):
        model_config({"models": {}}, "dense")


def test_apply_tuned_only_changes_tuned_keys():
    tuned = {"best_params": {"weights": 0.8}, "space": {"weights": {"type": "split"}}}
    spec = {**HYBRID, "depth": 300}
    out = apply_tuned(spec, tuned)
    assert out["weights"] == pytest.approx([0.8, 0.2])
    assert out["depth"] == 300 and out["components"] == HYBRID["components"]


def test_budget_shares_and_storage_redaction(tmp_path):
    from shelflab.config import redact
    from shelflab.tuning.storage import resolve_storage
    from shelflab.tuning.workers import shares

    assert shares(8, 2) == [4, 4] and shares(7, 3) == [3, 2, 2] and shares(2, 5) == [1, 1]
    assert redact("postgresql://bob:secret@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert redact(None) == "memory"
    url = resolve_storage("sqlite:///.cache/optuna.db", root=tmp_path)
    assert url == f"sqlite:///{tmp_path}/.cache/optuna.db" and (tmp_path / ".cache").is_dir()
    assert resolve_storage(None) is None
