"""Open a Store from a URL: the one place that knows which backend a URL names.

Accepted:

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (the SQLAlchemy spelling),
  or a plain filesystem path: an SQLite file, created and migrated if needed;
- `:memory:` or `sqlite://:memory:`: a private in-memory database (tests, dry runs);
- `sqlite:` URLs may carry `?busy_timeout=SECONDS`;
- `postgresql://USER@HOST:PORT/DB` / `postgres://...`: the PostgreSQL store (several
  replicas), with `?schema=NAME` and `?pool_size=N`; other query options go to libpq. The
  URL never carries a password: `password` comes from the store settings' secret.

Anything else raises UnsupportedStoreURLError rather than silently using something else.

Neighbours: `sqlite.py` and `postgres.py` (the stores it opens), `base.py`; used by the
CLI and the sidecar.
"""

from __future__ import annotations

import re
import urllib.parse

import psycopg
from pydantic import SecretStr

from engine.core.clock import Clock
from engine.store.base import Store, UnsupportedStoreURLError
from engine.store.postgres import PostgresStore, PostgresTarget
from engine.store.sqlite import MEMORY, SQLiteStore

_POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def parse_sqlite_url(url: str) -> tuple[str, float | None]:
    """(path, busy_timeout or None) for an SQLite URL or plain path."""
    if url in (MEMORY, "sqlite://:memory:", "sqlite:///:memory:", "sqlite://"):
        return MEMORY, None
    if not url.startswith("sqlite:"):
        if "://" in url:
            scheme = url.split("://", 1)[0]
            raise UnsupportedStoreURLError(
                f"unsupported store URL scheme {scheme!r}: use sqlite:///path or a file path"
            )
        return url, None
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise UnsupportedStoreURLError(
            f"bad SQLite URL {url!r}: write sqlite:///relative.db or sqlite:////abs/path.db"
        )
    path = urllib.parse.unquote(parts.path[1:])  # sqlite:///x -> "x"; sqlite:////x -> "/x"
    if not path:
        raise UnsupportedStoreURLError(f"SQLite URL {url!r} names no file")
    busy_timeout: float | None = None
    for key, value in urllib.parse.parse_qsl(parts.query, strict_parsing=bool(parts.query)):
        if key != "busy_timeout":
            raise UnsupportedStoreURLError(f"unknown SQLite URL option {key!r}")
        try:
            busy_timeout = float(value)
        except ValueError:
            raise UnsupportedStoreURLError(
                f"busy_timeout must be a number of seconds, got {value!r}"
            ) from None
        if busy_timeout <= 0:
            raise UnsupportedStoreURLError(f"busy_timeout must be > 0, got {value!r}")
    return path, busy_timeout


def parse_postgres_url(url: str) -> PostgresTarget:
    """Split energyctl's options off a `postgresql://` URL; refuse a password in it."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise UnsupportedStoreURLError(f"not a PostgreSQL URL: scheme {parts.scheme!r}")
    if parts.password is not None:
        raise UnsupportedStoreURLError(
            "the PostgreSQL URL contains a password: remove it and give it as the store's "
            "password setting (a secret reference) instead"
        )
    schema, pool_size, passed = "public", 5, []
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            if not _SCHEMA_NAME.match(value):
                raise UnsupportedStoreURLError(
                    f"schema must be a lower-case SQL name (letters, digits, _), got {value!r}"
                )
            schema = value
        elif key == "pool_size":
            if not value.isdigit() or not 1 <= int(value) <= 100:
                raise UnsupportedStoreURLError(f"pool_size must be 1..100, got {value!r}")
            pool_size = int(value)
        else:
            passed.append((key, value))
    if not any(key == "connect_timeout" for key, _ in passed):
        passed.append(("connect_timeout", "10"))
    conninfo = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(passed)))
    try:
        psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise UnsupportedStoreURLError(f"bad PostgreSQL URL {url!r}: {exc}") from None
    return PostgresTarget(conninfo, schema, pool_size, display=url)


async def open_store(url: str, clock: Clock, *, password: SecretStr | None = None) -> Store:
    """Open (and migrate) the store `url` names. See the module docstring for the URLs.

    `password` is the database password (PostgreSQL only), resolved from a secret.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in _POSTGRES_SCHEMES:
        return await PostgresStore.open(parse_postgres_url(url), clock, password=password)
    if password is not None:
        raise UnsupportedStoreURLError("a password was given, but SQLite stores take none")
    path, busy_timeout = parse_sqlite_url(url)
    if busy_timeout is None:
        return await SQLiteStore.open(path, clock)
    return await SQLiteStore.open(path, clock, busy_timeout=busy_timeout)
