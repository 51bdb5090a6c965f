"""`energyctl --version`: the package version and the store schema version, read from the
shipped migrations; click's shell completion as the README documents it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import engine
from engine.cli import main
from engine.store import SchemaVersionError, migrating

MIGRATIONS = Path(migrating.__file__).with_name("migrations")


def test_version_names_the_package_and_the_schema() -> None:
    shipped = len(list((MIGRATIONS / "sqlite").glob("[0-9][0-9][0-9][0-9]_*.sql")))
    assert shipped == len(list((MIGRATIONS / "postgresql").glob("[0-9][0-9][0-9][0-9]_*.sql")))
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"energyctl, version {engine.__version__}, store schema {shipped}\n"


def test_a_new_migration_shows_in_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = migrating.discover("sqlite")
    extra = migrating.Migration(len(shipped) + 1, "added", "SELECT 1;")
    monkeypatch.setattr(migrating, "discover", lambda dialect: [*shipped, extra])
    result = CliRunner().invoke(main, ["--version"])
    assert result.output.endswith(f"store schema {len(shipped) + 1}\n"), result.output


def test_dialects_that_disagree_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = migrating.discover
    monkeypatch.setattr(
        migrating, "discover", lambda d: real(d)[:-1] if d == "postgresql" else real(d)
    )
    with pytest.raises(SchemaVersionError, match="different migration counts"):
        migrating.schema_version()


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o"), ("zsh", "compdef")])
def test_shell_completion_script(shell: str, marker: str) -> None:
    result = CliRunner().invoke(
        main, [], prog_name="energyctl", env={"_ENERGYCTL_COMPLETE": f"{shell}_source"}
    )
    assert result.exit_code == 0 and marker in result.output, result.output
