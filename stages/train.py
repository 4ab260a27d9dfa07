"""train@<model>: fit the model on the train split (zero-shot models only record their spec)."""

import sys

from shelflab.atomic import atomic_dir
from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params, model_spec
from shelflab.layout import Layout
from shelflab.models import create
from shelflab.pipeline.built import model_context, train_data
from shelflab.tuning.tuned import tuned_spec


def main(name: str) -> None:
    layout = Layout(find_root())
    # the tune@ stage's best values on top of params.yaml (pass-through when not tuned)
    spec = tuned_spec(layout.root, name, model_spec(load_params(), name))
    model = create(name, spec, model_context(layout))
    model.fit(train_data(layout))
    with atomic_dir(layout.model_dir(name)) as tmp:
        model.save(tmp)
    # wall and CPU time: run_stage's closing line
    print(f"train@{name}: {spec['family']} saved to {layout.model_dir(name)}")


if __name__ == "__main__":
    run_stage(f"train@{sys.argv[1]}", main, sys.argv[1])
