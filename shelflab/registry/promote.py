"""`shelflab promote`: read the evidence of a candidate version and the current champion from
MLflow (per-query metrics of their evaluation runs, run metrics for guardrails such as
latency), decide with `registry.promotion.decide`, move the aliases with a recorded history,
and log the decision as an MLflow run of its own (experiment `<registered name>-promotion`)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.errors import ConfigError, InputError
from shelflab.registry.aliases import (
    CHALLENGER,
    CHAMPION,
    current,
    move,
    registry_lock,
    require_registered,
)
from shelflab.registry.promotion import Decision, decide
from shelflab.registry.tracking import MODEL_TAG, use_experiment, use_tracking_uri


@dataclass
class Outcome:
    name: str
    candidate: str
    champion_before: str | None
    champion_after: str
    decision: Decision | None  # None: no champion yet (the candidate became it)
    run_id: str

    def summary(self) -> str:
        if self.decision is None:
            return (
                f"{self.name}: no champion yet: version {self.candidate} becomes champion "
                f"(decision run {self.run_id})"
            )
        head = (
            f"{self.name}: candidate version {self.candidate} vs champion version "
            f"{self.champion_before}"
        )
        return f"{head}\n{self.decision.summary()}\n(decision run {self.run_id})"


def resolve_version(client: Any, name: str, candidate: str) -> Any:
    """A version number, or the run id of an evaluation run registered under `name`."""
    from mlflow.exceptions import MlflowException

    require_registered(client, name)
    if candidate.isdigit():
        try:
            return client.get_model_version(name, candidate)
        except MlflowException:
            raise ConfigError(f"registered model {name!r} has no version {candidate}") from None
    versions = client.search_model_versions(f"name = '{name}' and run_id = '{candidate}'")
    if not versions:
        other = client.search_model_versions(f"run_id = '{candidate}'")
        where = f" (it is registered as {sorted({v.name for v in other})})" if other else ""
        raise ConfigError(f"run {candidate!r} has no version of {name!r}{where}")
    return max(versions, key=lambda v: int(v.version))


def check_same_problem(client: Any, name: str, version: Any) -> None:
    """A candidate from another track or dataset is refused."""
    model = client.get_registered_model(name)
    run = client.get_run(version.run_id)
    for key in ("track", "dataset"):
        want, got = model.tags.get(key), run.data.tags.get(key)
        if want is not None and got != want:
            raise ConfigError(
                f"version {version.version} of {name!r} was evaluated with {key} {got!r}, "
                f"the registered model is for {key} {want!r}"
            )


def per_query(client: Any, version: Any, split: str) -> pl.DataFrame:
    """The version's per-query metrics on `split`, from its evaluation run."""
    import mlflow

    run = client.get_run(version.run_id)
    key = run.data.tags.get(MODEL_TAG)
    if key is None:
        raise InputError(
            f"version {version.version}: its run {version.run_id} is no evaluation run"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=version.run_id, artifact_path=f"{key}.parquet", dst_path=tmp
            )
            table = pl.read_parquet(Path(local))
        except Exception as err:  # missing or unreadable artifact
            raise InputError(
                f"version {version.version}: cannot read its per-query metrics "
                f"({key}.parquet in run {version.run_id}): {err}"
            ) from None
    part = table.filter(pl.col("split") == split)
    if part.height == 0:
        raise InputError(
            f"version {version.version} has no evaluation on split {split!r} "
            f"(it has: {sorted(set(table['split'].to_list()))})"
        )
    return part.drop("split")


def run_metric(client: Any, version: Any, key: str) -> float:
    metrics = client.get_run(version.run_id).data.metrics
    if key not in metrics:
        raise InputError(f"version {version.version}: its run has no metric {key!r}")
    return float(metrics[key])


def guard_values(client: Any, cand: Any, champ: Any, cfg: dict[str, Any], split: str, pq):
    """Guardrails that are not per-query columns are read from the runs' metrics: `<split>_<name>`
    or, for latency (measured on test only), `test_<name>`."""
    out = {}
    for name in cfg.get("guardrails") or {}:
        if name in pq.columns:
            continue
        keys = [f"{split}_{name}", f"test_{name}", f"test_latency_{name.removeprefix('latency_')}"]
        metrics = client.get_run(cand.run_id).data.metrics
        key = next((k for k in keys if k in metrics), keys[0])
        out[name] = (run_metric(client, cand, key), run_metric(client, champ, key))
    return out


def promote(
    tracking_uri: str, name: str, candidate: str, cfg: dict[str, Any], split: str
) -> Outcome:
    from mlflow.tracking import MlflowClient

    use_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    version = resolve_version(client, name, candidate)
    check_same_problem(client, name, version)
    cand_pq = per_query(client, version, split)  # fail before taking the lock
    v = str(version.version)
    with registry_lock(tracking_uri, name):
        before = current(client, name, CHAMPION)
        if before == v:
            raise ConfigError(f"version {v} of {name!r} is already the champion")
        decision = None
        if before is not None:
            champ = client.get_model_version(name, before)
            decision = decide(
                cand_pq,
                per_query(client, champ, split),
                cfg,
                split=split,
                guard_values=guard_values(client, version, champ, cfg, split, cand_pq),
            )
        run_id = _log_decision(name, v, before, decision, cfg, split)
        if decision is None:
            move(client, name, CHAMPION, v, action="initial", why="first champion", run_id=run_id)
            after = v
        elif decision.promote:
            move(client, name, CHAMPION, v, action="promote", why=decision.reason, run_id=run_id)
            move(
                client,
                name,
                CHALLENGER,
                before,
                action="promote",
                why=f"replaced as champion by version {v}",
                run_id=run_id,
            )
            after = v
        else:
            move(client, name, CHALLENGER, v, action="refuse", why=decision.reason, run_id=run_id)
            after = before
    return Outcome(name, v, before, after, decision, run_id)


def _log_decision(name, candidate, champion, decision, cfg, split) -> str:
    import mlflow

    use_experiment(f"{name}-promotion")
    with mlflow.start_run(run_name=f"v{candidate} vs v{champion or '-'}") as run:
        mlflow.set_tags(
            {
                "shelflab.kind": "promotion",
                "registered_model": name,
                "candidate_version": candidate,
                "champion_version": champion or "",
                "decision": "initial"
                if decision is None
                else ("promote" if decision.promote else "keep"),
            }
        )
        mlflow.log_params(
            {
                "metric": cfg["metric"],
                "split": split,
                "alpha": cfg["alpha"],
                "min_delta": cfg["min_delta"],
                "guardrails": json.dumps(cfg.get("guardrails") or {}),
            }
        )
        if decision is not None:
            mlflow.log_metrics(
                {
                    "candidate_mean": decision.candidate_mean,
                    "champion_mean": decision.champion_mean,
                    "delta": decision.delta,
                    "delta_ci_low": decision.delta_ci[0],
                    "delta_ci_high": decision.delta_ci[1],
                    "p_value": decision.p_value,
                    "n_queries": decision.n_queries,
                }
            )
            mlflow.log_dict(decision.as_dict(), "decision.json")
        return run.info.run_id
