"""What the pipeline knows about a built model (shelflab/pipeline/built.py)."""

import json

import pytest

from shelflab.layout import Layout
from shelflab.pipeline.built import build_times

pytestmark = pytest.mark.unit


def test_build_times_read_the_stage_timings(tmp_path):
    layout = Layout(tmp_path)
    for stage, wall in (("tune@xgb_ltr", 40.5), ("train@xgb_ltr", 13.6)):
        path = layout.timings(stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"wall_s": wall, "cpu_s": 1.0}))
    # index@ has not written its file: left out rather than guessed
    assert build_times(layout, "xgb_ltr") == {"tune_s": 40.5, "train_s": 13.6}
    assert build_times(layout, "bm25") == {}
