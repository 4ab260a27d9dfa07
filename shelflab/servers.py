"""Server URLs (MLflow tracking, Optuna storage): the schemes users write, normalised for the
drivers installed, and a bounded check that the server answers, so a server that is down is
one clear line within seconds instead of minutes of retries and a traceback.

- `postgresql://` and `postgres://` mean the installed psycopg2 driver (SQLAlchemy maps the
  plain scheme to psycopg 3, which ShelfLab does not install), with libpq's `connect_timeout`.
- The timeout is `SHELFLAB_CONNECT_TIMEOUT` seconds (default 10). MLflow's HTTP client retries
  a few times only (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, default 2 here, 7 in MLflow).
"""

from __future__ import annotations

import functools
import os
from urllib.parse import urlsplit

from shelflab.config import POSTGRES_SCHEMES, TIMEOUT_ENV, connect_timeout, database_url, redact
from shelflab.errors import ConfigError

_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}


def check_reachable(url: str | None, what: str) -> None:
    """Raise ConfigError (one line: `what`, the URL without password, the cause) when the
    PostgreSQL database or HTTP tracking server at `url` does not answer within the timeout.
    Local stores (sqlite, files, memory) are not checked. Each URL is checked once a process."""
    if url:
        _check(url, what)


@functools.lru_cache(maxsize=16)
def _check(url: str, what: str) -> None:
    scheme = urlsplit(url).scheme
    timeout = connect_timeout()
    if scheme in ("http", "https"):
        for key, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        cause = _http_problem(url, timeout)
    elif scheme in POSTGRES_SCHEMES:
        cause = _postgres_problem(database_url(url))
    else:
        return
    if cause:
        raise ConfigError(
            f"{what} {redact(url)} is not reachable: {cause} "
            f"(waited up to {timeout:g} s; {TIMEOUT_ENV} sets the limit)"
        )


def _http_problem(url: str, timeout: float) -> str | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        return None if exc.code < 500 else f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return str(reason).strip() or type(exc).__name__


def _postgres_problem(url: str) -> str | None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect():
            return None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        text = str(getattr(exc, "orig", None) or exc).strip()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[0] if lines else type(exc).__name__
    finally:
        engine.dispose()
