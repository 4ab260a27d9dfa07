"""Fresh PostgreSQL databases on the machine's server (127.0.0.1:5432, trust auth), dropped
after the test; skipped where no server runs."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432


def pg_up() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def _databases(prefix: str) -> Iterator[Callable[[], str]]:
    if not pg_up():
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}")
    import psycopg2

    admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="test")
    admin.autocommit = True
    made: list[str] = []

    def make() -> str:
        """A new database; its URL as the README writes them (postgresql://...)."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        made.append(name)
        return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"

    try:
        yield make
    finally:
        with admin.cursor() as cur:
            for name in made:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def pg_database() -> Iterator[Callable[[], str]]:
    """pg_database() -> the URL of a fresh database (as many as the test asks for)."""
    yield from _databases("shelflab_test")


@pytest.fixture(scope="module")
def pg_module_database() -> Iterator[Callable[[], str]]:
    """The same, kept for a whole module (a server started once per module)."""
    yield from _databases("shelflab_mod")
