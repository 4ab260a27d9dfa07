"""Where a study lives and which study it is: storage URLs, the study name (a hash of all that
defines the search, not of the budget, including the code that runs the trials), and the
clean-up `resume` does after a killed process."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.config import database_url
from shelflab.models.base import TrainData
from shelflab.servers import check_reachable

DEFAULT_STORAGE = "sqlite:///optuna.db"


def resolve_storage(url: str | None, root: Path | None = None) -> str | None:
    """None -> in-memory (one process only); a relative sqlite path is anchored at `root`; a
    PostgreSQL database must answer within SHELFLAB_CONNECT_TIMEOUT seconds."""
    if url in (None, "", "memory", ":memory:"):
        return None
    prefix = "sqlite:///"
    if root is not None and url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        url = prefix + str(Path(root) / url[len(prefix) :])
    if url.startswith(prefix) and url[len(prefix) :] not in ("", ":memory:"):
        Path(url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
    url = database_url(url)  # postgresql:// -> the installed psycopg2, with a connect timeout
    check_reachable(url, "Optuna storage")
    return url


def data_fingerprint(data: TrainData) -> str:
    """A stable digest of the catalog and the train/valid queries + qrels."""
    digest = hashlib.sha1()
    for frame in (
        data.items,
        data.train_queries,
        data.train_qrels,
        data.valid_queries,
        data.valid_qrels,
    ):
        if frame is not None:
            # list columns (next-item histories) as space-joined ids: CSV holds no nested data
            flat = frame.with_columns(
                pl.col(c).list.join(" ") for c, t in frame.schema.items() if t == pl.List(pl.String)
            )
            digest.update(flat.sort(flat.columns[0]).write_csv().encode())
    return digest.hexdigest()[:16]


@functools.cache
def code_fingerprint() -> str:
    """A digest of the shelflab package's Python sources. Part of the study name: trials that
    other code ran belong to another study, so resuming after a code change (a `dvc repro`
    re-running tune@<model> because its imports changed) tunes again instead of counting the
    old trials toward the budget."""
    return source_digest(Path(__file__).resolve().parents[1])


def source_digest(folder: Path) -> str:
    """16 hex digits over the names and bytes of the .py files under `folder`."""
    digest = hashlib.sha1()
    for path in sorted(folder.rglob("*.py")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def study_name_for(
    name: str, spec: Mapping[str, Any], cfg: Mapping[str, Any], fingerprint: str, threshold: float
) -> str:
    key = {
        "model": name,
        "spec": spec,
        "space": cfg["space"],
        **({"fixed": cfg["fixed"]} if cfg["fixed"] else {}),
        **{k: cfg[k] for k in ("catalog", "queries") if cfg.get(k)},
        **{k: cfg[k] for k in ("seed", "sampler", "metric", "split", "k")},
        "relevance_threshold": threshold,
        "data": fingerprint,
        "code": code_fingerprint(),
    }
    blob = json.dumps(key, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def finished_states() -> tuple:
    """The states that count toward the budget."""
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)


def fail_stale(study) -> int:
    """Mark trials left RUNNING (a killed process) as FAIL; returns how many."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "error", "stale: process was killed")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(stale)
