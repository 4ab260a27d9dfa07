"""Champion/challenger gate: a candidate replaces the champion only when it is better on the
same queries by a paired test (p < alpha), by at least `min_delta` on the mean, and no
guardrail regresses beyond its tolerance. Pure decision logic here; `registry.promote` reads
the evidence from MLflow and moves the aliases."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from shelflab.contract import QUERY_ID
from shelflab.errors import ConfigError, InputError
from shelflab.evaluation.significance import paired_test

GUARD_KEYS = ("max_drop", "max_ratio", "max")


@dataclass
class Guardrail:
    name: str
    candidate: float
    champion: float
    limit: str
    passed: bool


@dataclass
class Decision:
    promote: bool
    reason: str
    metric: str
    split: str
    n_queries: int
    candidate_mean: float
    champion_mean: float
    delta: float
    delta_ci: tuple[float, float]
    p_value: float
    alpha: float
    min_delta: float
    guardrails: list[Guardrail] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"{'PROMOTE' if self.promote else 'KEEP CHAMPION'}: {self.reason}",
            f"  {self.metric} on {self.split} ({self.n_queries} queries): candidate "
            f"{self.candidate_mean:.4f} vs champion {self.champion_mean:.4f}, delta "
            f"{self.delta:+.4f} [{self.delta_ci[0]:+.4f}, {self.delta_ci[1]:+.4f}], "
            f"p = {self.p_value:.4g} (alpha {self.alpha}, min_delta {self.min_delta})",
        ]
        for g in self.guardrails:
            lines.append(
                f"  guardrail {g.name}: candidate {g.candidate:.4g} vs champion "
                f"{g.champion:.4g} ({g.limit}) {'ok' if g.passed else 'FAILED'}"
            )
        return "\n".join(lines)


def check_config(cfg: dict[str, Any]) -> None:
    for key in ("metric", "alpha", "min_delta"):
        if key not in cfg:
            raise ConfigError(f"promote: missing key {key!r}")
    if not 0 < float(cfg["alpha"]) < 1:
        raise ConfigError(f"promote.alpha must be in (0, 1), got {cfg['alpha']!r}")
    for name, rule in (cfg.get("guardrails") or {}).items():
        if not isinstance(rule, dict) or not rule or set(rule) - set(GUARD_KEYS):
            raise ConfigError(
                f"promote.guardrails.{name}: expected a mapping with any of {GUARD_KEYS}, "
                f"got {rule!r}"
            )


def align(candidate: pl.DataFrame, champion: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Per-query values of both on the same queries; refused unless the query sets match."""
    for label, frame in (("candidate", candidate), ("champion", champion)):
        if metric not in frame.columns:
            raise InputError(
                f"{label} has no per-query {metric!r}",
                expected=f"one of {[c for c in frame.columns if c not in (QUERY_ID, 'split')]}",
            )
    a, b = set(candidate[QUERY_ID].to_list()), set(champion[QUERY_ID].to_list())
    if a != b:
        raise InputError(
            f"candidate and champion were evaluated on different queries "
            f"({len(a - b)} only in the candidate, {len(b - a)} only in the champion): "
            "compare them on the same split of the same data",
        )
    return candidate.select(QUERY_ID, pl.col(metric).alias("candidate")).join(
        champion.select(QUERY_ID, pl.col(metric).alias("champion")), on=QUERY_ID
    )


def guardrail(name: str, rule: dict[str, float], cand: float, champ: float) -> Guardrail:
    """`max_drop`: the candidate may be at most this much below the champion (quality
    metrics); `max_ratio`: at most this many times the champion (costs such as latency);
    `max`: an absolute ceiling."""
    ok, limits = True, []
    if "max_drop" in rule:
        ok &= cand >= champ - rule["max_drop"]
        limits.append(f"drop <= {rule['max_drop']}")
    if "max_ratio" in rule:
        ok &= cand <= champ * rule["max_ratio"]
        limits.append(f"<= {rule['max_ratio']} x champion")
    if "max" in rule:
        ok &= cand <= rule["max"]
        limits.append(f"<= {rule['max']}")
    return Guardrail(name, float(cand), float(champ), ", ".join(limits), bool(ok))


def decide(
    candidate: pl.DataFrame,
    champion: pl.DataFrame,
    cfg: dict[str, Any],
    *,
    split: str,
    guard_values: dict[str, tuple[float, float]] | None = None,
) -> Decision:
    """`candidate`/`champion`: per-query frames (query_id + metric columns) of one split.
    `guard_values`: (candidate, champion) for guardrails that are not per-query columns
    (e.g. latency_p95_ms); per-query guardrail metrics are compared on their means."""
    check_config(cfg)
    metric = cfg["metric"]
    pair = align(candidate, champion, metric)
    sig = cfg.get("significance", {})
    test = paired_test(
        pair.select(QUERY_ID, pl.col("candidate").alias(metric)),
        pair.select(QUERY_ID, pl.col("champion").alias(metric)),
        metric=metric,
        method=sig.get("method", "randomization"),
        n_resamples=int(sig.get("n_resamples", 10000)),
        seed=int(sig.get("seed", 0)),
    )
    guards = []
    values = dict(guard_values or {})
    for name, rule in (cfg.get("guardrails") or {}).items():
        if name in values:
            cand, champ = values[name]
        elif name not in candidate.columns:
            raise ConfigError(
                f"promote.guardrails.{name}: no per-query column and no run metric of that name"
            )
        else:
            both = align(candidate, champion, name)
            cand, champ = float(both["candidate"].mean()), float(both["champion"].mean())
        guards.append(guardrail(name, rule, cand, champ))
    alpha, min_delta = float(cfg["alpha"]), float(cfg["min_delta"])
    failed = [g.name for g in guards if not g.passed]
    if test.delta <= 0 or test.p_value >= alpha:
        reason = f"not significantly better (p = {test.p_value:.4g}, alpha {alpha})"
    elif test.delta < min_delta:
        reason = f"gain {test.delta:+.4f} below min_delta {min_delta}"
    elif failed:
        reason = f"guardrail(s) regressed: {', '.join(failed)}"
    else:
        reason = f"significantly better (p = {test.p_value:.4g}) and guardrails hold"
    return Decision(
        promote=reason.startswith("significantly better"),
        reason=reason,
        metric=metric,
        split=split,
        n_queries=pair.height,
        candidate_mean=float(pair["candidate"].mean()),
        champion_mean=float(pair["champion"].mean()),
        delta=float(test.delta),
        delta_ci=(float(test.ci_low), float(test.ci_high)),
        p_value=float(test.p_value),
        alpha=alpha,
        min_delta=min_delta,
        guardrails=guards,
    )


__all__ = ["Decision", "Guardrail", "align", "check_config", "decide", "guardrail"]
