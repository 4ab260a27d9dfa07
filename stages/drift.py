"""drift@<batch>: a new batch of reviews against the training-period reviews (Evidently data,
text and embedding drift), and the champion (or a named model) on the batch's review -> item
queries against its test-split metrics. Writes reports/drift/<batch>/{report.html,summary.json}."""

import json
import sys

from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params
from shelflab.layout import Layout

EXIT_DRIFT = 3


def main(batch_name: str) -> int:
    from shelflab.drift.batches import champion_model, default_reference, load_batch, model_side
    from shelflab.drift.report import run_drift

    root = find_root()
    params = load_params()
    cfg = params["drift"]
    spec = cfg["batches"][batch_name]
    reference, label = default_reference(root)
    batch = load_batch(root / spec["path"], spec.get("split"))
    result = run_drift(
        reference, batch, cfg, cache_dir=Layout(root).cache_dir, labels=(label, spec["path"])
    )
    key = cfg.get("model", "champion")
    key = champion_model(root) if key == "champion" else key
    result.summary["model"] = model_side(root, params, key, batch)
    result.save(root / "reports" / "drift" / batch_name)
    s, model = result.summary, result.summary["model"]
    print(
        f"drift@{batch_name}: dataset_drift={s['dataset_drift']} "
        f"drift_share={s['drift_share']:.2f} embedding score={s['embeddings']['score']:.4f}; "
        f"{key} on the batch: {json.dumps(model.get('comparison', model.get('note')))}"
    )
    if s["dataset_drift"] and cfg.get("fail_on_drift"):
        print(f"drift@{batch_name}: drift.fail_on_drift is set and the batch drifted")
        return EXIT_DRIFT
    return 0


if __name__ == "__main__":
    run_stage(f"drift@{sys.argv[1]}", main, sys.argv[1])
