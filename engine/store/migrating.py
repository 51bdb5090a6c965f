"""Schema migrations: numbered `.sql` files applied in order, each inside a transaction.

Migrations live in `migrations/<dialect>/NNNN_name.sql` (`sqlite` and `postgresql`, with
the same numbers, so schema version N means the same tables on both). The database
records each applied migration in `schema_migrations` (version, name, checksum of the
file, time). Opening a store applies the missing ones; it refuses a database whose schema
is newer than this code, or whose record of a migration disagrees with the file (a
released migration was edited): both raise SchemaVersionError.

On PostgreSQL, `migrate_postgresql` runs under an advisory transaction lock keyed by the
schema: replicas that start together queue there, and the later ones find the work done.

Neighbours: `sqlite.py` calls `migrate_sqlite` on a fresh connection, `postgres.py` calls
`migrate_postgresql`; `base.py` defines the error.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from engine.store.base import SchemaVersionError
from engine.store.postgres_orders import lock_key

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(dialect: str) -> list[Migration]:
    """The migrations shipped for `dialect`, by version; versions must run 1, 2, 3, ..."""
    folder = resources.files("engine.store").joinpath("migrations").joinpath(dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise SchemaVersionError(f"{dialect} migrations are not numbered 1..N: {versions}")
    return found


DIALECTS = ("sqlite", "postgresql")


def schema_version() -> int:
    """The store schema this code migrates to: the number of shipped migrations, the same
    for every dialect (SchemaVersionError when they differ)."""
    counts = {dialect: len(discover(dialect)) for dialect in DIALECTS}
    if len(set(counts.values())) != 1:
        raise SchemaVersionError(f"the dialects ship different migration counts: {counts}")
    return counts[DIALECTS[0]]


def split_statements(script: str) -> list[str]:
    """Split an SQLite script into statements (trigger bodies and comments included).

    `sqlite3.complete_statement` decides where a statement ends, so a ";" inside a string,
    a comment or a trigger body does not split it.
    """
    statements: list[str] = []
    buffer = ""
    pieces = script.split(";")
    for index, piece in enumerate(pieces):
        buffer += piece if index == len(pieces) - 1 else piece + ";"
        if sqlite3.complete_statement(buffer):
            if _strip_comments(buffer).strip(" \t\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if _strip_comments(buffer).strip():
        raise SchemaVersionError(f"incomplete SQL statement at the end of a migration: {buffer!r}")
    return statements


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    checksum   TEXT    NOT NULL,
    applied_at REAL    NOT NULL
) STRICT
"""


def migrate_sqlite(conn: sqlite3.Connection, now: float, dialect: str = "sqlite") -> int:
    """Bring the database up to the newest shipped schema. Returns the schema version.

    `conn` must be in autocommit mode (isolation_level None). All pending migrations run
    in one `BEGIN IMMEDIATE` transaction: two processes opening the same new file at once
    serialise here, and the second finds the work done.
    """
    migrations = discover(dialect)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_CREATE_TABLE)
        applied = {
            int(version): (str(name), str(checksum))
            for version, name, checksum in conn.execute(
                "SELECT version, name, checksum FROM schema_migrations"
            )
        }
        check_applied(applied, migrations)
        for migration in migrations:
            if migration.version in applied:
                continue
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                "VALUES (?, ?, ?, ?)",
                (migration.version, migration.name, migration.checksum, now),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(migrations)


_CREATE_TABLE_PG = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER          PRIMARY KEY,
    name       TEXT             NOT NULL,
    checksum   TEXT             NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)
"""


async def migrate_postgresql(conn: psycopg.AsyncConnection[Any], now: float, schema: str) -> int:
    """Bring `schema` up to the newest shipped schema (creating it if needed); returns the
    schema version. `conn` must be in autocommit mode with `schema` first in its
    search_path. Everything runs in one transaction (PostgreSQL's DDL is transactional),
    after `pg_advisory_xact_lock` on a key derived from the schema name: three replicas
    starting at once apply the migrations once, and a failed one leaves nothing behind.
    """
    migrations = discover("postgresql")
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(%s)", (lock_key("energyctl", schema, "migrate"),)
        )
        # DDL only when needed: a role without CREATE rights can run a migrated schema.
        cursor = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s),"
            " to_regclass('schema_migrations') IS NOT NULL",
            (schema,),
        )
        found = await cursor.fetchone()
        assert found is not None
        if not found[0]:
            await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        if not found[1]:
            await conn.execute(_CREATE_TABLE_PG)
        cursor = await conn.execute("SELECT version, name, checksum FROM schema_migrations")
        applied = {
            int(version): (str(name), str(checksum))
            for version, name, checksum in await cursor.fetchall()
        }
        check_applied(applied, migrations)
        for migration in migrations:
            if migration.version in applied:
                continue
            # A whole file in one simple-protocol call: $$-quoted bodies stay whole.
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                " VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, migration.checksum, now),
            )
    return len(migrations)


def check_applied(applied: dict[int, tuple[str, str]], migrations: list[Migration]) -> None:
    """Refuse a database that is newer than the code or disagrees with a shipped file."""
    known = {m.version: m for m in migrations}
    newest = max(applied, default=0)
    if newest > len(migrations):
        raise SchemaVersionError(
            f"the database's schema is version {newest}, newer than this energyctl "
            f"(which knows up to version {len(migrations)}): upgrade energyctl, or point "
            "it at another database"
        )
    for version, (name, checksum) in sorted(applied.items()):
        migration = known[version]
        if (name, checksum) != (migration.name, migration.checksum):
            raise SchemaVersionError(
                f"migration {version:04d} recorded in the database ({name}, {checksum[:12]}) "
                f"differs from the shipped file ({migration.name}, "
                f"{migration.checksum[:12]}): released migrations must never be edited"
            )
