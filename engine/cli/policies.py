"""`energyctl validate` and `energyctl schema`: the policy documents, checked or described.

Neither calls a vendor, the node or the store. Neighbours: `policies/loading.py`,
`policies/schema.py`, `engine/act/validating.py` (the engine's own checks).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: diagnostics on stderr, one per line; json: a report on stdout.",
)
@click.option(
    "--strict-secrets",
    is_flag=True,
    help="Treat unresolved secret references (unset variables, missing files) as errors.",
)
def validate(paths: tuple[Path, ...], output: str, strict_secrets: bool) -> None:
    """Check policy files and directories; exit 0 if valid, 1 otherwise.

    Every error is reported as FILE:LINE:COLUMN: error: MESSAGE. Unresolved secret
    references are warnings unless --strict-secrets is given, so this works in CI.
    """
    from engine.act.validating import ENGINE_CHECKS
    from policies.loading import SecretMode, load

    mode = SecretMode.REQUIRED if strict_secrets else SecretMode.OPTIONAL
    result = load(paths, secrets=mode, checks=ENGINE_CHECKS)
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for diagnostic in result.diagnostics:
            click.echo(str(diagnostic), err=True)
        counts = result.summary()
        if result.ok:
            click.echo(
                f"valid: files {counts['files']}, providers {counts['Provider']}, "
                f"policies {counts['EnergyPolicy']}, engine configs {counts['EngineConfig']}, "
                f"deposit policies {counts['DepositPolicy']}, "
                f"warnings {len(result.warnings)}"
            )
        else:
            click.echo(
                f"invalid: errors {len(result.errors)}, warnings {len(result.warnings)}",
                err=True,
            )
    sys.exit(0 if result.ok else 1)


@click.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of the policy documents."""
    from policies.schema import json_schema_text

    click.echo(json_schema_text(), nl=False)
