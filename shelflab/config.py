"""params.yaml: loading, section access and clear errors for malformed files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from shelflab.errors import ConfigError, UnknownModelError

PARAMS_FILE = "params.yaml"
# every pipeline has these; `enrich` (text normalisation) only the text tracks
REQUIRED_SECTIONS = ("data", "split", "models", "evaluate", "leaderboard", "mlflow")

TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def quiet_environment() -> None:
    """Telemetry off and model hubs offline: weights can never be downloaded here."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


def default_data_dir() -> Path:
    """The real data beside the checkout (`../shared/data`); SHELFLAB_DATA_DIR overrides."""
    here = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("SHELFLAB_DATA_DIR", here.parent / "shared" / "data"))


def find_root(start: Path | None = None) -> Path:
    """The repo root: the nearest parent holding params.yaml (falls back to the cwd)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / PARAMS_FILE).is_file():
            return candidate
    return here


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path else find_root() / PARAMS_FILE
    if not path.is_file():
        raise ConfigError(
            f"{path}: params file not found (expected a YAML file with sections "
            f"{', '.join(REQUIRED_SECTIONS)})"
        )
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: malformed YAML: {problem}") from None
    if not isinstance(params, dict):
        raise ConfigError(
            f"{path}: expected a mapping of sections at the top level, got {type(params).__name__}"
        )
    missing = [s for s in REQUIRED_SECTIONS if s not in params]
    if missing:
        raise ConfigError(f"{path}: missing section(s) {', '.join(missing)}")
    for name, section in params.items():
        if name in REQUIRED_SECTIONS and not isinstance(section, dict):
            raise ConfigError(
                f"{path}: section {name!r} must be a mapping, got {type(section).__name__}"
            )
    for name, spec in params["models"].items():
        if not isinstance(spec, dict) or "family" not in spec:
            raise ConfigError(f"{path}: models.{name} must be a mapping with a 'family' key")
    from shelflab.params_schema import check_params  # pydantic: only when a file is loaded

    check_params(params, path)
    return params


def model_spec(params: dict[str, Any], name: str) -> dict[str, Any]:
    models = params["models"]
    if name not in models:
        raise UnknownModelError(name, list(models))
    return dict(models[name])


def experiment_name(params: dict[str, Any]) -> str:
    return f"{params['mlflow']['track']}-{params['data']['name']}"


TIMEOUT_ENV = "SHELFLAB_CONNECT_TIMEOUT"
DEFAULT_TIMEOUT_S = 10.0
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")


def connect_timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds > 0")
    return value


def database_url(url: str) -> str:
    """`url` as SQLAlchemy should open it: PostgreSQL through psycopg2 with a connect timeout;
    anything else unchanged."""
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        return url
    query = dict(parse_qsl(parts.query))
    query.setdefault("connect_timeout", str(max(1, round(connect_timeout()))))
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2", query=urlencode(query)))


def tracking_uri(params: dict[str, Any], root: Path) -> str:
    """MLFLOW_TRACKING_URI wins; a relative sqlite URI is anchored at the repo root so stages
    and the CLI share one database whatever their working directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or params["mlflow"].get(
        "tracking_uri", "sqlite:///mlflow.db"
    )
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        uri = prefix + str(root / uri[len(prefix) :])
    return database_url(uri)


def redact(url: str | None) -> str:
    """A storage/tracking URL without its password (for logs, MLflow tags and reports)."""
    if not url:
        return "memory"
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}"
    return url
