"""The resampling settings of a track's leaderboard, from its params: the `leaderboard` stage
and `shelflab leaderboard` (run in the track) pass the same ones to `build_leaderboard`, so
the two print the same CIs and p-values for the same evaluation runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def leaderboard_stats(params: Mapping[str, Any]) -> dict[str, Any]:
    """method, n_resamples and seed of `leaderboard.significance`, confidence of
    `evaluate.bootstrap` (the keyword arguments of `build_leaderboard`); a key the params
    leave out takes the params schema's default."""
    from shelflab.params_schema import Leaderboard, Resampling

    sig = Leaderboard.model_validate(params.get("leaderboard") or {}).significance
    boot = Resampling.model_validate((params.get("evaluate") or {}).get("bootstrap") or {})
    return {
        "method": sig.method,
        "n_resamples": sig.n_resamples,
        "confidence": boot.confidence,
        "seed": sig.seed,
    }
