"""`llm_rerank`: a first stage (any family) whose top `candidates` are re-ordered by a chat model
behind an OpenAI-compatible endpoint (a local vLLM / llama.cpp / Ollama server or a hosted one).

The prompt holds the query text (search) or the user's history titles (next-item: the query
input follows the first stage's) and the candidates' titles, from the catalog's `text`. Items
below the reranked top keep the first stage's order, so `retrieve(queries, k)` returns k items
whenever the first stage has them. Replies are cached per request (`shelflab.llm.batch`: a
rerun makes no request, a failed run resumes), and the requests, cache hits, tokens, cost and
answer repairs are counted across calls and reported by `diagnostics()`. The endpoint is never
required: `unavailable_reason(params)` says when it is missing (so a stage can skip the model)
and `retrieve` raises ConfigError with the same words.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from shelflab.atomic import write_parquet
from shelflab.contract import HISTORY, ITEM_ID, QUERY_ID, RANK, SCORE, TEXT, add_rank
from shelflab.errors import ConfigError
from shelflab.llm.batch import Answer, plan_jobs, run_jobs
from shelflab.llm.client import ENV_MODEL, ENV_URL, LLMConfig
from shelflab.llm.rerank import PROMPT_VERSION, REPAIRS, TASK, parse_ranking, rerank_messages
from shelflab.models.base import TrainData, empty_run
from shelflab.models.composite import Composite, check_components
from shelflab.models.params import Param

TITLES_FILE = "titles.parquet"
COUNTS = ("queries", "requested", "cached", "retried", "failed", "prompt_tokens",
          "completion_tokens", "all_prompt_tokens", "all_completion_tokens")  # fmt: skip
_CLIENT_KEYS = ("base_url", "model", "api_key_env", "timeout", "max_retries", "retry_base_delay",
                "max_tokens")  # fmt: skip


class LLMRerankRetriever(Composite):
    family: ClassVar[str] = "llm_rerank"
    PARAMS: ClassVar[dict[str, Param]] = {
        "components": Param("models", {"bm25": {"family": "bm25"}}, help="the first stage"),
        "first_stage": Param("str", None, nullable=True, help="default: the only component"),
        "candidates": Param("int", 20, min=2, help="first-stage items the LLM re-orders"),
        "base_url": Param("str", None, nullable=True, help="overridden by $SHELFLAB_LLM_URL"),
        "model": Param("str", None, nullable=True, help="overridden by $SHELFLAB_LLM_MODEL"),
        "api_key_env": Param("str", "OPENAI_API_KEY", help="env var holding the key, if any"),
        "timeout": Param("float", 60.0, min=0.0, help="seconds per request"),
        "max_retries": Param("int", 3, min=0),
        "retry_base_delay": Param("float", 1.0, min=0.0),
        "concurrency": Param("int", 4, min=1, help="requests in flight at once"),
        "max_tokens": Param("int", None, nullable=True, min=1),
        "rationale": Param("bool", False, help="ask for a one-sentence rationale per query"),
        "max_history": Param("int", 20, min=1, help="latest history items in the prompt"),
        "max_title_chars": Param("int", 200, min=10),
        "cache_dir": Param("str", None, nullable=True, help="default: <ctx.cache_dir>/llm"),
        "rationale_dir": Param("str", None, nullable=True, help="default: <cache_dir>/rationales"),
        "on_error": Param("str", "raise", choices=("raise", "first_stage")),
        "cost_per_1k_prompt_tokens": Param("float", 0.0, min=0.0),
        "cost_per_1k_completion_tokens": Param("float", 0.0, min=0.0),
    }

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self.query_input = self.first.query_input  # type: ignore[misc]  # follows the first stage
        self.titles: dict[str, str] = {}
        self.counts: Counter[str] = Counter(dict.fromkeys(COUNTS, 0))
        self.repairs: Counter[str] = Counter(dict.fromkeys(REPAIRS, 0))
        self.rationales: dict[str, str] = {}

    @staticmethod
    def check_params(model: str, params: dict[str, Any]) -> None:
        comps = params["components"]
        if len(comps) != 1:
            raise ConfigError(f"model {model!r}: expected one component (the first stage)")
        if params["first_stage"] is None:  # recorded in the saved spec
            params["first_stage"] = next(iter(comps))
        check_components(model, params, "llm_rerank", first_stage=True)

    @staticmethod
    def unavailable_reason(params: dict[str, Any]) -> str | None:
        """Why the model cannot run here (no endpoint in params or env), else None."""
        conf = _client_config(params, ".")
        if not (conf.base_url or "").strip() or not (conf.model or "").strip():
            return (
                f"llm_rerank needs params base_url and model (or ${ENV_URL} / ${ENV_MODEL}); "
                "skipped"
            )
        return None

    @property
    def first(self):
        return self.components[self.params["first_stage"]]

    @property
    def cache_dir(self) -> Path:
        return Path(self.params["cache_dir"] or Path(self.ctx.cache_dir) / "llm")

    # --- fit / index: the catalog's titles --------------------------------------------
    def fit(self, train: TrainData) -> None:
        super().fit(train)
        self.titles = dict(self._titles(train.items).iter_rows())  # until an index is opened

    def build_own_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        titles = self._titles(items)
        write_parquet(titles, Path(index_dir) / TITLES_FILE)
        self.titles = dict(titles.iter_rows())

    def open_own_index(self, index_dir: Path) -> None:
        self.titles = dict(pl.read_parquet(Path(index_dir) / TITLES_FILE).iter_rows())

    def _titles(self, items: pl.DataFrame) -> pl.DataFrame:
        """item_id -> the start of its text, whitespace squashed (what the prompt shows)."""
        text = pl.col(TEXT).cast(pl.String).fill_null("").str.replace_all(r"\s+", " ")
        return items.select(
            pl.col(ITEM_ID).cast(pl.String),
            text.str.strip_chars().str.slice(0, self.params["max_title_chars"]).alias(TEXT),
        )

    # --- retrieve -------------------------------------------------------------------
    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        conf = self._config()
        n = self.params["candidates"]
        run = self.first.retrieve(queries, max(k, n)).sort(QUERY_ID, RANK)
        if run.height == 0:
            return empty_run()
        ranked: dict[str, list[str]] = {}
        for qid, item in run.select(QUERY_ID, ITEM_ID).iter_rows():
            ranked.setdefault(qid, []).append(item)
        context = dict(
            queries.select(pl.col(QUERY_ID).cast(pl.String), self.query_input).iter_rows()
        )
        messages = {
            qid: self._messages(context.get(qid), items[:n])
            for qid, items in ranked.items()
            if len(items[:n]) > 1
        }
        answers = self._ask(conf, messages)
        rows: list[tuple[str, str, float]] = []
        for qid, items in ranked.items():
            top = items[:n]
            answer = answers.get(qid)
            if answer is not None:
                ranking = parse_ranking(answer.value, len(top))
                self.repairs.update(ranking.repairs)
                if ranking.rationale and self.params["rationale"]:
                    self.rationales[qid] = ranking.rationale
                top = [top[i] for i in ranking.order]
            final = (top + items[n:])[:k]
            rows.extend((qid, item, float(len(final) - pos)) for pos, item in enumerate(final))
        out = pl.DataFrame(rows, schema=[QUERY_ID, ITEM_ID, SCORE], orient="row")
        return add_rank(out.with_columns(pl.col(SCORE).cast(pl.Float64))).cast({RANK: pl.Int64})

    def _messages(self, context: Any, items: list[str]) -> list[dict[str, str]]:
        titles = [self.titles.get(item) or item for item in items]
        if self.query_input == HISTORY:
            latest = list(context or [])[-self.params["max_history"] :]
            history = [self.titles.get(h) or h for h in latest]
            return rerank_messages(titles, history=history, rationale=self.params["rationale"])
        return rerank_messages(titles, query=context or "", rationale=self.params["rationale"])

    def _ask(
        self, conf: LLMConfig, messages: dict[str, list[dict[str, str]]]
    ) -> dict[str, Answer[str]]:
        """The reply per query id (absent: failed, with on_error=first_stage); counts updated."""
        jobs = plan_jobs(conf, TASK, PROMPT_VERSION, messages)
        strict = self.params["on_error"] == "raise"
        answers, stats, errors = run_jobs(
            conf,
            TASK,
            PROMPT_VERSION,
            jobs,
            str,
            lambda v: isinstance(v, str),
            strict=strict,
            quiet_when_cached=True,
        )
        if errors:
            print(f"{self.name}: {len(errors)} request(s) failed, first-stage order kept: "
                  f"{errors[0]}", flush=True)  # fmt: skip
        for key in ("requested", "cached", "retried", "failed", "prompt_tokens",
                    "completion_tokens"):  # fmt: skip
            self.counts[key] += getattr(stats, key)
        by_query = {qid: answers[job.key] for job in jobs if job.key in answers for qid in job.ids}
        self.counts["queries"] += len(by_query)
        self.counts["all_prompt_tokens"] += sum(a.prompt_tokens for a in by_query.values())
        self.counts["all_completion_tokens"] += sum(a.completion_tokens for a in by_query.values())
        return by_query

    def _config(self) -> LLMConfig:
        reason = self.unavailable_reason(self.params)
        if reason:
            raise ConfigError(f"model {self.name!r}: {reason.removesuffix('; skipped')}")
        conf = _client_config(self.params, str(self.cache_dir))
        conf.require_endpoint()  # a malformed URL says so here
        return conf

    # --- reports --------------------------------------------------------------------
    def diagnostics(self, queries: pl.DataFrame, k: int) -> dict[str, float]:
        """The first stage's figures plus `llm.*`: requests, cache hits, tokens, cost (of the
        requests made) and cost per 1,000 queries (from every reranked query's tokens, cached
        ones included), and the answer repairs; all cumulative over this model's calls."""
        c = self.counts
        cost = self._cost(c["prompt_tokens"], c["completion_tokens"])
        every = self._cost(c["all_prompt_tokens"], c["all_completion_tokens"])
        out = dict(super().diagnostics(queries, k))
        out.update({
            "llm.queries": float(c["queries"]),
            "llm.requests": float(c["requested"]),
            "llm.cached": float(c["cached"]),
            "llm.retried": float(c["retried"]),
            "llm.failed": float(c["failed"]),
            "llm.prompt_tokens": float(c["prompt_tokens"]),
            "llm.completion_tokens": float(c["completion_tokens"]),
            "llm.cost": cost,
            "llm.cost_per_1000_queries": 1000.0 * every / c["queries"] if c["queries"] else 0.0,
        })  # fmt: skip
        out.update({f"llm.repairs.{key}": float(self.repairs[key]) for key in REPAIRS})
        return out

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        p = self.params
        return (prompt_tokens * p["cost_per_1k_prompt_tokens"]
                + completion_tokens * p["cost_per_1k_completion_tokens"]) / 1000.0  # fmt: skip

    def rationales_frame(self) -> pl.DataFrame:
        """The rationale kept per query (with `rationale: true`), by query id."""
        rows = sorted(self.rationales.items())
        return pl.DataFrame(
            rows, schema={QUERY_ID: pl.String, "rationale": pl.String}, orient="row"
        )

    def save_rationales(self, directory: str | Path | None = None) -> Path | None:
        """Write the rationales to `<directory>/<model name>.parquet` (default: the
        `rationale_dir` param, else `<cache_dir>/rationales`); None when there are none."""
        if not self.rationales:
            return None
        base = directory or self.params["rationale_dir"] or self.cache_dir / "rationales"
        path = Path(base) / f"{self.name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(self.rationales_frame(), path)
        return path

    def close(self) -> None:
        self.save_rationales()
        super().close()


def _client_config(params: dict[str, Any], cache_dir: str) -> LLMConfig:
    """The client config from the model's flat params (env overrides applied)."""
    section = {key: params.get(key) for key in _CLIENT_KEYS if params.get(key) is not None}
    section.setdefault("api_key_env", "OPENAI_API_KEY")
    return LLMConfig.from_params(
        {**section, "batch_size": params.get("concurrency", 4), "cache_dir": cache_dir}
    )
