from pathlib import Path

import pytest

SAMPLE = Path(__file__).parents[2] / "data" / "sample" / "sequences"


@pytest.fixture(scope="session")
def beauty_sample():
    from shelflab.data_io.sequences import load_s3rec
    from shelflab.quarantine import Quarantine

    return load_s3rec(
        SAMPLE / "Beauty.sample.txt.gz",
        attributes=SAMPLE / "Beauty.sample_item2attributes.json.gz",
        datamaps=SAMPLE / "Beauty.sample_datamaps.json.gz",
        quarantine=Quarantine(),
    )


@pytest.fixture(scope="session")
def beauty_task(beauty_sample):
    from shelflab.protocols.leave_one_out import leave_one_out

    return leave_one_out(beauty_sample.sequences)


@pytest.fixture(scope="session")
def beauty_train(beauty_sample, beauty_task):
    from shelflab.models.base import TrainData

    tq, tr = beauty_task.part("train")
    vq, vr = beauty_task.part("valid")
    return TrainData(beauty_sample.items, tq, tr, vq, vr)


@pytest.fixture(scope="session")
def save_index_open():
    """save_index_open(model, items, tmp_path, ctx): the pipeline's life cycle, save -> load +
    build_index -> open_model from the two directories."""
    return _save_index_open


def _save_index_open(model, items, tmp_path, ctx):
    from shelflab.models import load, open_model

    (tmp_path / "m").mkdir()
    (tmp_path / "i").mkdir()
    model.save(tmp_path / "m")
    load(tmp_path / "m", ctx).build_index(items, tmp_path / "i")
    return open_model(tmp_path / "m", tmp_path / "i", ctx)


@pytest.fixture(scope="session")
def beauty_small(beauty_sample):
    """600 users of the excerpt and the items they touch, as (TrainData, leave-one-out task):
    MiniLM embeds ~2k texts, not 7.8k."""
    import polars as pl

    from shelflab.models.base import TrainData
    from shelflab.protocols.leave_one_out import leave_one_out

    seqs = beauty_sample.sequences.head(600)
    task = leave_one_out(seqs)
    used = seqs["items"].explode().unique()
    items = beauty_sample.items.filter(pl.col("item_id").is_in(used.implode()))
    return TrainData(items, *task.part("train"), *task.part("valid")), task


@pytest.fixture(scope="session")
def seq_ctx(tmp_path_factory):
    """One model context for the next-item model tests: their MiniLM embeddings of the same
    texts are cached once."""
    from shelflab.models import ModelContext

    return ModelContext(cache_dir=tmp_path_factory.mktemp("seq-cache"))
