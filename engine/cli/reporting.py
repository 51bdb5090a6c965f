"""`energyctl report`: what each watched address's energy cost over a window, and advice.

Reads the store and the node of the policy set's EngineConfig (`--store`, `--node`), never
a vendor: vendor secrets are not needed. The figures and the suggestions come from
`engine/act/reporting.py`; the table from `rendering.py`. A long read of blocks shows a
progress bar on stderr (rich), only on a terminal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from engine.cli.common import FILES, NODE, OUTPUT, STORE, load_or_exit, run_or_exit


def _since(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from policies.units import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if seconds <= 0:
        raise click.BadParameter("must be longer than 0 s")
    return seconds


@click.command()
@FILES
@click.option(
    "--since",
    default="7d",
    show_default=True,
    callback=_since,
    help="The window: the last DURATION of chain time before the node's head (e.g. 1d, 7d).",
)
@OUTPUT
@STORE
@NODE
def report(
    paths: tuple[Path, ...],
    since: int,
    output: str,
    store_url: str | None,
    node_url: str | None,
) -> None:
    """What energy cost over the window, per policy and per address: transfers, energy
    bought, used and wasted, TRX spent on orders and burned by transfers, cost per
    transfer against burning for everything, and suggestions where the history shows a
    cheaper setting (docs/engine.md, "Cost report").

    Orders come from the store (created in the window), transfers and their receipts from
    the node (every block of the window is read). Read-only; no vendor is called.
    Exit codes: 0 success, 1 error (store or node unreachable, blocks not served),
    2 bad option (e.g. --since).
    """
    from engine.act.reporting import cost_report
    from engine.cli.rendering import report_table
    from engine.core.clock import SystemClock
    from engine.observe.chain import ChainReader
    from engine.session import store_password
    from engine.store import open_store

    policy_set = load_or_exit(paths, secrets=False)  # the store and the node only
    settings = policy_set.settings
    url = store_url or settings.store.url
    key = settings.node.api_key
    clock = SystemClock()

    async def run() -> dict[str, Any]:
        store = await open_store(url, clock, password=store_password(policy_set, url))
        async with (
            store,
            ChainReader(
                node_url or settings.node.url,
                api_key=key.get() if key is not None and key.resolved else None,
                clock=clock,
            ) as reader,
        ):
            with _Progress() as bar:
                found = await cost_report(
                    policy_set,
                    store,
                    reader,
                    since=since,
                    on_window=bar.start,
                    progress=bar.advance,
                )
        return found.to_json()

    result = run_or_exit(run())
    if output == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(report_table(result), nl=False)


class _Progress:
    """Blocks read, as a rich progress bar on stderr when it is a terminal; else silent."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        console = Console(stderr=True)
        self._bar = (
            Progress(
                "reading blocks",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            if console.is_terminal
            else None
        )
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, total: int) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task("blocks", total=total)

    def advance(self, done: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done)


__all__ = ["report"]
