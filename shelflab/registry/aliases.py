"""Alias moves with a durable history (MLflow keeps only the current alias, mlflow/mlflow#2169).

Every move of `champion` or `challenger` is one registered-model tag
`shelflab.alias_log.<seq>` holding JSON {seq, alias, from, to, action, why, who, when, run_id}.
Tags go through the MLflow client API, so the history works the same on a sqlite store, a
PostgreSQL-backed store and a remote `mlflow server`. Moves of one registered model are
serialised: two `promote` calls at once leave one champion and a complete, gap-free log.
- On one machine, a file lock per (tracking URI, model name).
- Across machines, a PostgreSQL advisory lock (keyed by the model name) on the tracking
  store's own database when it is PostgreSQL, or on `SHELFLAB_LOCK_URL` (a PostgreSQL URL, for
  a remote `mlflow server` whose backend the clients cannot see). Without either, moves from
  different machines are not serialised.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shelflab.errors import ConfigError

CHAMPION = "champion"
CHALLENGER = "challenger"
LOG_PREFIX = "shelflab.alias_log."
LOCK_TIMEOUT_S = 600


@dataclass(frozen=True)
class AliasMove:
    seq: int
    alias: str
    from_version: str | None
    to_version: str | None
    action: str  # promote | initial | keep | refuse | rollback
    why: str
    who: str
    when: str
    run_id: str | None = None

    def as_json(self) -> str:
        return json.dumps(
            {
                "seq": self.seq,
                "alias": self.alias,
                "from": self.from_version,
                "to": self.to_version,
                "action": self.action,
                "why": self.why,
                "who": self.who,
                "when": self.when,
                "run_id": self.run_id,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> AliasMove:
        d = json.loads(text)
        return cls(
            seq=int(d["seq"]),
            alias=d["alias"],
            from_version=d.get("from"),
            to_version=d.get("to"),
            action=d["action"],
            why=d.get("why", ""),
            who=d.get("who", ""),
            when=d.get("when", ""),
            run_id=d.get("run_id"),
        )


LOCK_URL_ENV = "SHELFLAB_LOCK_URL"


@contextmanager
def registry_lock(tracking_uri: str, name: str) -> Iterator[None]:
    """One alias writer at a time per (tracking store, registered model): a file lock on this
    machine, and a PostgreSQL advisory lock across machines where there is a database to hold
    it (see the module docstring)."""
    from filelock import FileLock, Timeout

    key = hashlib.sha1(f"{tracking_uri}\n{name}".encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "shelflab-registry-locks"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with (
            FileLock(str(folder / f"{key}.lock"), timeout=LOCK_TIMEOUT_S),
            advisory_lock(lock_database(tracking_uri), name),
        ):
            yield
    except Timeout:
        raise ConfigError(
            f"registered model {name!r}: another process has held its alias lock for "
            f"{LOCK_TIMEOUT_S} s"
        ) from None


def lock_database(tracking_uri: str) -> str | None:
    """The PostgreSQL database that holds the cross-machine lock: SHELFLAB_LOCK_URL, else the
    tracking store itself when it is PostgreSQL, else None."""
    from shelflab.config import POSTGRES_SCHEMES, database_url

    url = os.environ.get(LOCK_URL_ENV) or tracking_uri
    if url.split("://", 1)[0] not in POSTGRES_SCHEMES:
        if os.environ.get(LOCK_URL_ENV):
            raise ConfigError(f"{LOCK_URL_ENV}: expected a postgresql:// URL, got {url!r}")
        return None
    return database_url(url)


@contextmanager
def advisory_lock(url: str | None, name: str, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """pg_advisory_lock on database `url` (session-level, keyed by a 63-bit hash of the model
    name), polled with pg_try_advisory_lock so a wait is bounded; no-op when `url` is None. A
    crashed holder's lock ends with its connection."""
    if url is None:
        yield
        return
    import time

    import sqlalchemy

    from shelflab.servers import check_reachable

    check_reachable(url, "registry lock database")
    lock_key = int(hashlib.sha1(f"shelflab-alias\n{name}".encode()).hexdigest()[:15], 16)
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            deadline = time.monotonic() + timeout_s
            take = sqlalchemy.text("SELECT pg_try_advisory_lock(:k)")
            while not conn.execute(take, {"k": lock_key}).scalar():
                conn.commit()
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"registered model {name!r}: its alias lock in the database has been "
                        f"held by another process for {timeout_s:g} s"
                    )
                time.sleep(0.2)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
                conn.commit()
    finally:
        engine.dispose()


def require_registered(client: Any, name: str) -> None:
    """ConfigError naming the known models when `name` is not registered."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        known = [m.name for m in client.search_registered_models()]
        raise ConfigError(
            f"no registered model {name!r} (known: {', '.join(known) or 'none'})"
        ) from None


def current(client: Any, name: str, alias: str) -> str | None:
    """The version an alias points to, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def history(client: Any, name: str) -> list[AliasMove]:
    """Every recorded alias move of `name`, oldest first."""
    model = client.get_registered_model(name)
    moves = [AliasMove.from_json(v) for k, v in model.tags.items() if k.startswith(LOG_PREFIX)]
    return sorted(moves, key=lambda m: m.seq)


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def move(
    client: Any,
    name: str,
    alias: str,
    version: str | None,
    *,
    action: str,
    why: str,
    run_id: str | None = None,
) -> AliasMove:
    """Point `alias` at `version` (None: delete the alias) and append the move to the log.
    Call it under `registry_lock`. The log entry is written first: a crash between the two
    writes leaves a logged move that `history` shows and the alias not yet moved, never an
    unlogged move."""
    before = current(client, name, alias)
    log = history(client, name)
    entry = AliasMove(
        seq=(log[-1].seq + 1) if log else 1,
        alias=alias,
        from_version=before,
        to_version=version,
        action=action,
        why=why,
        who=who(),
        when=datetime.now(UTC).isoformat(timespec="seconds"),
        run_id=run_id,
    )
    client.set_registered_model_tag(name, f"{LOG_PREFIX}{entry.seq:06d}", entry.as_json())
    if version is None:
        if before is not None:
            client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)
    return entry


def champion_stack(moves: list[AliasMove]) -> list[str]:
    """Champions in order, replaying the log: a promotion pushes, a rollback pops."""
    stack: list[str] = []
    for m in moves:
        if m.alias != CHAMPION or m.to_version is None:
            continue
        if m.action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != m.to_version:
                stack.append(m.to_version)
        elif not stack or stack[-1] != m.to_version:
            stack.append(m.to_version)
    return stack


def rollback(client: Any, tracking_uri: str, name: str, why: str = "") -> AliasMove:
    """Restore the champion before the current one (by the log); the current one becomes the
    challenger. Refused when there is no earlier champion."""
    with registry_lock(tracking_uri, name):
        now = current(client, name, CHAMPION)
        stack = champion_stack(history(client, name))
        if now is None or len(stack) < 2 or stack[-1] != now:
            raise ConfigError(
                f"registered model {name!r}: no earlier champion to roll back to "
                f"(champion: {now or 'none'}; champions on record: {stack or 'none'})"
            )
        previous = stack[-2]
        entry = move(
            client,
            name,
            CHAMPION,
            previous,
            action="rollback",
            why=why or f"rollback from version {now}",
        )
        move(client, name, CHALLENGER, now, action="rollback", why="rolled back from champion")
        return entry


def model_version(model_uri: str) -> Any:
    """The registry version behind models:/NAME@ALIAS or models:/NAME/VERSION (None for other
    URIs)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    if not model_uri.startswith("models:/"):
        return None
    ref = model_uri.removeprefix("models:/")
    client = MlflowClient()
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return client.get_model_version_by_alias(name, alias)
        name, _, number = ref.partition("/")
        return client.get_model_version(name, number)
    except mlflow.exceptions.MlflowException as err:
        raise ConfigError(f"{model_uri}: {err.message}") from None
