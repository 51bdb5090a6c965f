"""The control interface: `/control/*` JSON endpoints that drive the emulated chain.

Kept apart from `/wallet/` (no java-tron conventions here: plain JSON, real HTTP status
codes). The workload, the provider emulators in other processes and tests use it to
create and fund accounts, stake, delegate, undelegate, send USDT-like transfers, advance
a stepped clock and read a summary. Each call maps onto one `ChainState` method
(`state.py`); documented in docs/sandbox-node.md.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.tron_node.accounts import TronError, to_hex
from sandbox.tron_node.state import ChainState

Action = Callable[[ChainState, dict[str, Any]], dict[str, Any]]


class BadRequest(Exception):
    """A malformed control request (HTTP 400)."""


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name!r} must be a non-empty string")
    return value


def _int(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name!r} must be an integer")
    return value


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    return None if body.get(name) is None else _int(body, name)


def create_account(s: ChainState, b: dict[str, Any]) -> dict[str, Any]:
    address = _str(b, "address")
    s.create_account(address, _int(b, "balance_sun", 0))
    if b.get("usdt_holder"):
        s.mark_usdt_holder(address)
    return account_summary(s, address)


def fund(s: ChainState, b: dict[str, Any]) -> dict[str, Any]:
    address = _str(b, "address")
    s.fund(address, _int(b, "sun"))
    return account_summary(s, address)


def usdt_holder(s: ChainState, b: dict[str, Any]) -> dict[str, Any]:
    address = _str(b, "address")
    s.mark_usdt_holder(address)
    return {"address": address, "holds_usdt": True}


def stake(s: ChainState, b: dict[str, Any]) -> dict[str, Any]:
    return {"txid": s.stake_energy(_str(b, "address"), _int(b, "sun"))}


def delegate(s: ChainState, b: dict[str, Any]) -> dict[str, Any]:
    txid = s.delegate_energy(
        _str(b, "owner"),
        _str(b, "receiver"),
        _int(b, "sun"),
        lock_period_blocks=_optional_int(b, "lock_period_blocks"),
    )
    return {"txid": txid}


def undelegate(s: ChainState, b: dict[str, Any]) -> dict[str, Any]:
    return {"txid": s.undelegate_energy(_str(b, "owner"), _str(b, "receiver"), _int(b, "sun"))}


def transfer(s: ChainState, b: dict[str, Any]) -> dict[str, Any]:
    txid = s.transfer_usdt(
        _str(b, "sender"),
        _str(b, "recipient"),
        amount=_int(b, "amount", 1_000_000),
        fee_limit=_optional_int(b, "fee_limit"),
    )
    return {"txid": txid, **s.receipt_summary(txid)}


def advance(s: ChainState, b: dict[str, Any]) -> dict[str, Any]:
    seconds = b.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise BadRequest("'seconds' must be a number >= 0")
    head = s.advance(float(seconds))
    return {"head": head, "time": s.clock.now()}


def account_summary(s: ChainState, address: str) -> dict[str, Any]:
    resource = s.account_resource_json(to_hex(address)) or {}
    return {
        "address": address,
        "exists": s.has_account(address),
        "balance_sun": s.balance(address),
        "energy_limit": resource.get("EnergyLimit", 0),
        "energy_used": resource.get("EnergyUsed", 0),
        "available_energy": s.available_energy(address),
        "holds_usdt": s.holds_usdt(address),
    }


def chain_summary(s: ChainState) -> dict[str, Any]:
    return {
        "time": s.clock.now(),
        "head": s.head_block_number(),
        "solid": s.solid_block_number(),
        "total_energy_limit": s.params.total_energy_limit,
        "total_energy_weight": s.total_energy_weight,
        "energy_fee": s.params.energy_fee,
    }


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def _post(action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        try:
            return JSONResponse(action(request.app.state.chain, await _body(request)))
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except TronError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return handle


async def _state(request: Request) -> Response:
    return JSONResponse(chain_summary(request.app.state.chain))


async def _account(request: Request) -> Response:
    try:
        summary = account_summary(request.app.state.chain, request.path_params["address"])
    except TronError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(summary)


async def _sun_for_energy(request: Request) -> Response:
    state: ChainState = request.app.state.chain
    try:
        energy = int(request.query_params.get("energy", ""))
        return JSONResponse({"energy": energy, "sun": state.sun_for_energy(energy)})
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)


ACTIONS: dict[str, Action] = {
    "accounts": create_account,
    "fund": fund,
    "usdt-holder": usdt_holder,
    "stake": stake,
    "delegate": delegate,
    "undelegate": undelegate,
    "transfer": transfer,
    "advance": advance,
}


def control_routes() -> list[Route]:
    """The `/control/*` routes, mounted by `app.create_app` next to the node API."""
    routes = [Route(f"/control/{name}", _post(a), methods=["POST"]) for name, a in ACTIONS.items()]
    routes += [
        Route("/control/state", _state, methods=["GET"]),
        Route("/control/accounts/{address}", _account, methods=["GET"]),
        Route("/control/sun-for-energy", _sun_for_energy, methods=["GET"]),
    ]
    return routes
