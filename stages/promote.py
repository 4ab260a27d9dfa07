"""promote: the best model of this run (by `promote.metric` on `promote.split`) challenges the
registered champion; the gate in `shelflab.registry.promotion` decides."""

import json

from shelflab.atomic import write_json
from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params, tracking_uri
from shelflab.layout import Layout
from shelflab.pipeline.skipped import is_skipped
from shelflab.registry.pipeline_model import registered_name
from shelflab.registry.promote import promote


def main() -> None:
    root = find_root()
    params = load_params()
    cfg = params["promote"]
    layout = Layout(root)
    scores = {}
    for name in params["models"]:
        summary = json.loads(layout.model_metrics(name).read_text())
        if is_skipped(summary):  # could not run here (e.g. no LLM endpoint): not a candidate
            continue
        scores[name] = (summary[cfg["split"]][cfg["metric"]]["mean"], summary["_mlflow"])
    best = max(scores, key=lambda n: scores[n][0])
    info = scores[best][1]
    name = registered_name(params["mlflow"]["track"], params["data"]["name"])
    print(
        f"promote: best of this run on {cfg['split']} {cfg['metric']}: {best} "
        f"({scores[best][0]:.4f}, version {info['version']})"
    )
    from shelflab.errors import ConfigError

    try:
        outcome = promote(tracking_uri(params, root), name, info["version"], cfg, cfg["split"])
        result = {
            "candidate_model": best,
            "candidate_version": outcome.candidate,
            "champion_before": outcome.champion_before,
            "champion_after": outcome.champion_after,
            "promoted": outcome.champion_after == outcome.candidate,
            "decision": outcome.decision.as_dict() if outcome.decision else None,
        }
        print(outcome.summary())
    except ConfigError as err:  # e.g. this version is already the champion
        print(f"promote: {err}")
        result = {
            "candidate_model": best,
            "candidate_version": info["version"],
            "promoted": False,
            "note": str(err),
        }
    versions = {str(info["version"]): n for n, (_, info) in scores.items()}
    champion = str(result.get("champion_after") or result["candidate_version"])
    # the model key of the champion: drift@ stages evaluate its local build
    result["champion_model"] = versions.get(champion) or _model_key(
        tracking_uri(params, root), name, champion
    )
    write_json(result, layout.root / "metrics" / "promotion.json")


def _model_key(uri: str, name: str, version: str) -> str | None:
    """The `shelflab.model` tag of a version registered by an earlier run."""
    from mlflow import MlflowClient

    return MlflowClient(uri).get_model_version(name, version).tags.get("shelflab.model")


if __name__ == "__main__":
    run_stage("promote", main)
