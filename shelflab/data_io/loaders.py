"""Search-track loaders by format name (params.yaml `data.format`)."""

from __future__ import annotations

from pathlib import Path

from shelflab.data_io.dataset import SearchDataset
from shelflab.data_io.home_depot import load_home_depot_dir
from shelflab.data_io.wands import load_wands_dir
from shelflab.errors import ConfigError, InputError
from shelflab.quarantine import Quarantine

FORMATS = ("home_depot", "wands")


def load_search_dataset(
    fmt: str, directory: Path, *, grade_mapping: str = "minus_one", quarantine: Quarantine
) -> SearchDataset:
    """WANDS grades come from its Exact/Partial/Irrelevant labels; `grade_mapping` applies to
    Home Depot's 1..3 relevance means."""
    if not directory.is_dir():
        raise InputError(
            "data folder not found",
            path=directory,
            expected=f"a folder with the raw {fmt} files (params.yaml data.dir)",
        )
    if fmt == "home_depot":
        return load_home_depot_dir(directory, grade_mapping, quarantine=quarantine)
    if fmt == "wands":
        return load_wands_dir(directory, quarantine=quarantine)
    raise ConfigError(
        f"params.yaml data.format: unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})"
    )
