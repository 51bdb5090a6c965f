"""The sandbox's live terminal view (rich): energy against thresholds, orders, spend, burns.

`LiveView` is a context manager around `rich.live.Live`; `update(state)` redraws from a
`sandbox.running.SandboxState` after each pass. Nothing here touches the world or the
engine. Neighbours: `sandbox/running.py` (the state), the CLI's `sandbox` command.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sandbox.running import SandboxState

TRX = 1_000_000
_PHASE_STYLE = {
    "delivered": "green",
    "submitted": "yellow",
    "delegating": "yellow",
    "intent": "cyan",
    "unknown": "magenta",
    "failed": "red",
    "partial": "red",
}


def render(state: SandboxState, *, width: int = 24, recent: int = 8) -> Group:
    """The whole screen for one state."""
    minutes = (state.now - state.started_at) / 60.0
    head = Text(
        f"energyctl sandbox  emulated {minutes:6.1f} min  passes {state.passes}  "
        f"orders {len(state.orders)} (delivered {state.delivered})  "
        f"spent {state.spent_sun / TRX:,.2f} TRX  transfers {len(state.transfers)}  "
        f"burned {len(state.burns)}",
        style="bold",
    )
    energy = Table(title="energy against threshold", expand=False, show_edge=False)
    for column in ("address", "policy", "available", "threshold", ""):
        energy.add_column(column)
    for item in state.addresses:
        scale = max(item.threshold * 3, 1)
        filled = min(width, item.available * width // scale)
        mark = item.threshold * width // scale
        bar = "".join("█" if i < filled else ("|" if i == mark else "·") for i in range(width))
        style = "green" if item.available >= item.threshold else "red"
        energy.add_row(
            item.address[:10] + "…",
            item.policy,
            f"{item.available:,}",
            f"{item.threshold:,}",
            Text(bar, style=style),
        )
    orders = Table(title="orders (newest first)", show_edge=False)
    for column in ("provider", "address", "energy", "phase", "cost TRX"):
        orders.add_column(column)
    for order in state.orders[:recent]:
        cost = order.cost_sun if order.cost_sun is not None else order.reserved_sun
        orders.add_row(
            order.provider,
            order.address[:10] + "…",
            f"{order.energy:,}",
            Text(str(order.phase), style=_PHASE_STYLE.get(str(order.phase), "")),
            f"{cost / TRX:,.2f}",
        )
    spend = Table(title="spend per provider", show_edge=False)
    for column in ("provider", "orders", "delivered", "spent TRX"):
        spend.add_column(column)
    for name, totals in sorted(state.providers.items()):
        spend.add_row(
            name, str(totals.orders), str(totals.delivered), f"{totals.spent_sun / TRX:,.2f}"
        )
    burns = Table(title="transfers that burned TRX", show_edge=False)
    for column in ("address", "recipient", "burned TRX"):
        burns.add_column(column)
    for record in state.burns[-recent:]:
        burns.add_row(
            record.sender[:10] + "…",
            "fresh" if record.fresh else "holder",
            f"{record.burned_sun / TRX:,.2f}",
        )
    parts: list[Table | Text] = [head, energy, orders, spend, burns]
    parts += [Text(f"error: {message}", style="red") for message in state.errors[-3:]]
    return Group(*parts)


class LiveView:
    """Redraws the screen after each pass; see the module docstring."""

    def __init__(self, console: Console | None = None) -> None:
        self._live = Live(Text("starting…"), console=console, refresh_per_second=4)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.__exit__(exc_type, exc, tb)

    def update(self, state: SandboxState) -> None:
        self._live.update(render(state))
