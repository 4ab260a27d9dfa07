import os
from pathlib import Path

import pytest

from shelflab.config import quiet_environment

REPO = Path(__file__).resolve().parents[1]
TIERS = ("unit", "integration", "e2e")

# Fixtures shared across tiers (the integration tests reuse the unit tiers' built models).
pytest_plugins = [
    "plugins.models",
    "plugins.registry",
    "plugins.tuning",
    "plugins.sequences",
    "plugins.postgres",
    "plugins.llm_server",
    "plugins.relabel",
]

quiet_environment()  # telemetry off, model hubs offline (as every shelflab entry point)

# Under pytest-xdist each worker gets its share of the cores: a torch / BLAS thread pool per
# worker as wide as the machine oversubscribes it (set before anything imports torch or numpy).
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _threads = str(max(1, (os.cpu_count() or 1) // _workers))
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(key, _threads)


def shared_data_dir() -> Path:
    from shelflab.config import default_data_dir

    return default_data_dir()


@pytest.fixture(scope="session")
def free_port():
    """free_port() -> a TCP port nobody listens on at 127.0.0.1 (for servers the tests start)."""
    import socket

    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return pick


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set SHELFLAB_DATA_DIR)")
    return path


# --- the shipped sample (data/sample: 500 queries, 6,204 items) as pipeline data, built with
# the library calls the ingest/split/enrich stages make
@pytest.fixture(scope="session")
def params() -> dict:
    from shelflab.config import load_params

    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="session")
def sample_frames(params):
    """processed + enriched frames of the sample: items, queries, qrels, splits."""
    from shelflab.data_io.loaders import load_search_dataset
    from shelflab.protocols.random_split import split_queries
    from shelflab.quarantine import Quarantine
    from shelflab.textnorm import normalize_frame

    data = params["data"]
    ds = load_search_dataset(
        data["format"],
        REPO / "data" / "sample",
        grade_mapping=data.get("grade_mapping", "minus_one"),
        quarantine=Quarantine(),
    )
    cfg = params["split"]
    splits = split_queries(ds.queries, fractions=tuple(cfg["fractions"]), seed=cfg["seed"])
    return {
        "items": normalize_frame(ds.items, params["enrich"]),
        "queries": normalize_frame(ds.queries, params["enrich"]),
        "qrels": ds.qrels,
        "splits": splits,
    }


@pytest.fixture(scope="session")
def train_data(sample_frames):
    from shelflab.models.base import TrainData
    from shelflab.pipeline.built import split_frame

    f = sample_frames
    return TrainData(
        items=f["items"].select("item_id", "text"),
        train_queries=split_frame(f["queries"], f["splits"], "train"),
        train_qrels=split_frame(f["qrels"], f["splits"], "train"),
        valid_queries=split_frame(f["queries"], f["splits"], "valid"),
        valid_qrels=split_frame(f["qrels"], f["splits"], "valid"),
    )


def pytest_collection_modifyitems(config, items):
    """Each test is marked with its tier, the folder under tests/ it lives in (`-m unit`)."""
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(REPO / "tests").parts
        if parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
