"""The node's HTTP face: `/wallet/*` and `/walletsolidity/*` as a Starlette app.

Each endpoint reads its parameters (POST JSON or form body, or GET query string), asks
the `ChainState` (`reads.py`) and prints the answer with `wire.py`'s conventions: HTTP 200
everywhere, `{}` for not found, `{"Error": ...}` for bad input, `visible` from the body
except on `getnowblock`/`getchainparameters` (java-tron reads those from the query string
only). The TronGrid `TRON-PRO-API-KEY` header is accepted (and, if configured, enforced);
an optional injected delay stands for network latency, and `faults` (`faults.py`) an
outage, a stale node or junk answers. `control.py` adds `/control/*`.
`TronNode` serves the app on a loopback port (`sandbox.serving`) for a `with` block.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.serving import LoopbackServer, serve
from sandbox.tron_node import wire
from sandbox.tron_node.accounts import USDT_CONTRACT_HEX
from sandbox.tron_node.control import control_routes
from sandbox.tron_node.faults import NodeFaults
from sandbox.tron_node.state import ChainState
from sandbox.tron_node.wire import WireError, parse_address, parse_int

JSON = "application/json; charset=utf-8"
DAILY_USAGE = (
    "Exceed the user daily usage (100000), the maximum query frequency is 1 time per second"
)

# (state, params, visible, solid) -> JSON-ready result; None prints as {}.
Query = Callable[[ChainState, dict[str, Any], bool, bool], Any]
Gate = Callable[[Request], Awaitable[Response | None]]


def _limit(state: ChainState, solid: bool) -> int:
    return state.solid_block_number() if solid else state.head_block_number()


def get_account(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    address = parse_address(p.get("address"), visible, merge=True)
    return s.account_json(address) if address else None


def get_account_resource(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    address = parse_address(p.get("address"), visible)
    return s.account_resource_json(address) if address else None


def get_account_net(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    address = parse_address(p.get("address"), visible)
    return s.account_net_json(address) if address else None


def get_now_block(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    top = _limit(s, solid)
    return s.block_json(top, top)


def get_block_by_num(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    return s.block_json(parse_int(p.get("num")), _limit(s, solid))


#: java-tron's BLOCK_LIMIT_NUM for `getblockbylimitnext`
BLOCK_LIMIT_NUM = 100


def get_block_by_limit_next(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    """`/wallet/getblockbylimitnext`: blocks startNum .. endNum - 1 as `{"block": [...]}`;
    `{}` unless 0 < endNum - startNum <= 100 (java-tron's GetBlockByLimitNextServlet),
    and for a range wholly beyond the head."""
    start, end = parse_int(p.get("startNum")), parse_int(p.get("endNum"))
    if not (end > 0 and end > start and end - start <= BLOCK_LIMIT_NUM):
        return None
    top = _limit(s, solid)
    found = [b for n in range(max(0, start), min(end, top + 1)) if (b := s.block_json(n, top))]
    return {"block": found} if found else None


def get_block_by_id(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    number = s.block_number_of_id(str(p.get("value", "")))
    return None if number is None else s.block_json(number, _limit(s, solid))


def get_block(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    """`Wallet.getBlock`: number or id; errors here carry no class prefix."""
    top = _limit(s, solid)
    key = str(p.get("id_or_num", "") or "")
    if not key:
        number: int | None = top
    elif key.lstrip("-").isdigit():
        number = int(key)
        if number < 0:
            raise WireError("num must be greater than or equal to 0")
    elif len(key) == 64:
        try:
            bytes.fromhex(key)
        except ValueError as exc:
            raise WireError(f"id must be legal block hash: {key}") from exc
        number = s.block_number_of_id(key)
    else:
        raise WireError(f"id must be legal block hash: {key}")
    block = None if number is None else s.block_json(number, top)
    if block and not wire.truthy(p.get("detail")):
        block.pop("transactions", None)
    return block


def get_node_info(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    head, solid_num = s.head_block_number(), s.solid_block_number()
    return {
        "beginSyncNum": head,
        "block": f"Num:{head},ID:{s.blocks.block_id(head)}",
        "solidityBlock": f"Num:{solid_num},ID:{s.blocks.block_id(solid_num)}",
        "currentConnectCount": 30,
        "activeConnectCount": 10,
        "passiveConnectCount": 20,
        "totalFlow": 0,
        "peerInfoList": [],
        "configNodeInfo": {"codeVersion": "4.8.0", "versionNum": "18306", "p2pVersion": "11111"},
        "machineInfo": {"threadCount": 8, "cpuCount": 4},
        "cheatWitnessInfoMap": {},
    }


def get_chain_parameters(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    q = s.params
    pairs = [
        ("getMaintenanceTimeInterval", 21_600_000),
        ("getCreateAccountFee", 100_000),
        ("getTransactionFee", q.transaction_fee),
        ("getCreateNewAccountFeeInSystemContract", 1_000_000),
        ("getEnergyFee", q.energy_fee),
        ("getTotalEnergyLimit", q.total_energy_limit),
        ("getTotalEnergyCurrentLimit", q.total_energy_limit),
        ("getAllowAdaptiveEnergy", 0),
        ("getMaxFeeLimit", 15_000_000_000),
        ("getFreeNetLimit", q.free_net_limit),
        ("getTotalNetLimit", q.total_net_limit),
        ("getUnfreezeDelayDays", q.unfreeze_delay_days),
        ("getAllowDynamicEnergy", 1),
        ("getDynamicEnergyThreshold", 5_000_000_000),
        ("getDynamicEnergyIncreaseFactor", 2000),
        ("getDynamicEnergyMaxFactor", 34_000),
        ("getAllowCancelAllUnfreezeV2", 1),
        ("getMaxDelegateLockPeriod", q.max_delegate_lock_period),
    ]
    return {"chainParameter": [{"key": k, "value": v} for k, v in pairs]}


def get_energy_prices(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    return {"prices": f"0:{s.params.energy_fee}"}


def get_delegated_resource_v2(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    src = parse_address(p.get("fromAddress"), visible)
    dst = parse_address(p.get("toAddress"), visible)
    return s.delegated_resource_json(src, dst) if src and dst else None


def get_delegation_index(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    try:
        address = parse_address(p.get("value"), visible)
    except WireError:
        return None  # a malformed address answers {}
    return s.delegation_index_json(address) if address else None


def get_can_delegated_max_size(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    address = parse_address(p.get("owner_address"), visible)
    return s.can_delegate_max_json(address, parse_int(p.get("type"))) if address else None


def get_transaction_info(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    return s.transaction_info_json(str(p.get("value", "")), _limit(s, solid))


def get_transaction_infos(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    number = parse_int(p.get("num"))
    return s.transaction_infos_json(number, _limit(s, solid)) if number > 0 else None


_BALANCE_OF = ("balanceOf(address)", "70a08231")


def trigger_constant_contract(s: ChainState, p: dict[str, Any], visible: bool, solid: bool) -> Any:
    """`/wallet/triggerconstantcontract` for the one call the emulator runs: the USDT-like
    contract's `balanceOf(address)` (any other call answers as a revert would)."""
    contract = parse_address(p.get("contract_address"), visible)
    selector = str(p.get("function_selector", ""))
    parameter = str(p.get("parameter", ""))
    if contract != USDT_CONTRACT_HEX or selector not in _BALANCE_OF or len(parameter) != 64:
        return {"result": {"result": False, "code": "CONTRACT_EXE_ERROR", "message": ""}}
    owner = "41" + parameter[24:].lower()
    return {
        "result": {"result": True},
        "energy_used": 1_011,
        "constant_result": [f"{s.usdt_balance(owner):064x}"],
        "transaction": {},
    }


# name -> (query, reads `visible` from the POST body, also under /walletsolidity/)
ENDPOINTS: dict[str, tuple[Query, bool, bool]] = {
    "getaccount": (get_account, True, True),
    "getaccountresource": (get_account_resource, True, False),
    "getaccountnet": (get_account_net, True, False),
    "getnowblock": (get_now_block, False, True),
    "getblockbynum": (get_block_by_num, True, True),
    "getblockbyid": (get_block_by_id, True, True),
    "getblockbylimitnext": (get_block_by_limit_next, True, True),
    "getblock": (get_block, True, True),
    "getnodeinfo": (get_node_info, True, True),
    "getchainparameters": (get_chain_parameters, False, False),
    "getenergyprices": (get_energy_prices, True, True),
    "getdelegatedresourcev2": (get_delegated_resource_v2, True, True),
    "getdelegatedresourceaccountindexv2": (get_delegation_index, True, True),
    "getcandelegatedmaxsize": (get_can_delegated_max_size, True, True),
    "gettransactioninfobyid": (get_transaction_info, True, True),
    "gettransactioninfobyblocknum": (get_transaction_infos, True, True),
    "triggerconstantcontract": (trigger_constant_contract, True, False),
}


async def read_params(request: Request) -> dict[str, Any]:
    """Query-string parameters, overlaid by a JSON (or form-encoded) POST body."""
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        body = await request.body()
        if body.strip():
            if request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                params.update(parse_qsl(body.decode()))
            else:
                try:
                    data = json.loads(body)
                except ValueError as exc:
                    raise WireError(f"class com.alibaba.fastjson.JSONException : {exc}") from exc
                if not isinstance(data, dict):
                    raise WireError("class com.alibaba.fastjson.JSONException : not an object")
                params.update(data)
    return params


def _endpoint(
    query: Query, body_visible: bool, solid: bool, gate: Gate
) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        refused = await gate(request)
        if refused is not None:
            return refused
        faults: NodeFaults = request.app.state.faults
        faults.requests += 1
        if faults.down:
            faults.refused += 1
            return Response(b"503 Service Temporarily Unavailable", 503, media_type="text/plain")
        state: ChainState = request.app.state.chain
        try:
            params = await read_params(request)
            source = params if body_visible else request.query_params
            visible = wire.truthy(source.get("visible"))
            result = query(state, params, visible, solid)
            body = wire.encode({} if result is None else result, visible)
        except WireError as exc:
            body = wire.error_body(str(exc))
        except ValueError as exc:  # TronError and friends from the model
            body = wire.error_body(f"{wire.ILLEGAL_ARGUMENT} : {exc}")
        if faults.frozen:
            key = (request.url.path, str(request.query_params), await request.body())
            body = faults.answer(key, body)
        junk = faults.junk_for(request.url.path)
        return Response(body if junk is None else junk, media_type=JSON)

    return handle


def create_app(
    state: ChainState,
    latency: float = 0.0,
    api_key: str | None = None,
    faults: NodeFaults | None = None,
) -> Starlette:
    """The node as an ASGI app: `/wallet/*`, `/walletsolidity/*` and `/control/*`.

    `latency` seconds are awaited (not slept) before each node answer, so concurrent
    requests overlap. With `api_key` set, node requests must carry that key in
    `TRON-PRO-API-KEY`: none -> HTTP 401, another key -> HTTP 403 with TronGrid's
    "Exceed the user daily usage" JSON body (what makes tronpy rotate keys).
    `app.state.api_keys` counts the keys seen (None for requests without one).
    `faults` (default: a fresh `NodeFaults`, all off) is `app.state.faults`.
    """
    keys_seen: Counter[str | None] = Counter()

    async def gate(request: Request) -> Response | None:
        key = request.headers.get("tron-pro-api-key")
        keys_seen[key] += 1
        if latency > 0:
            await asyncio.sleep(latency)
        if api_key is None or key == api_key:
            return None
        if key is None:
            return Response(wire.error_body("ApiKey not exists"), 401, media_type=JSON)
        return Response(wire.error_body(DAILY_USAGE), 403, media_type=JSON)

    routes = []
    for name, (query, body_visible, on_solidity) in ENDPOINTS.items():
        handler = _endpoint(query, body_visible, False, gate)
        routes.append(Route(f"/wallet/{name}", handler, methods=["GET", "POST"]))
        if on_solidity:
            solid_handler = _endpoint(query, body_visible, True, gate)
            routes.append(Route(f"/walletsolidity/{name}", solid_handler, methods=["GET", "POST"]))
    app = Starlette(routes=routes + control_routes())
    app.state.chain = state
    app.state.api_keys = keys_seen
    app.state.faults = faults if faults is not None else NodeFaults()
    return app


@dataclass
class TronNode:
    """A running emulated node: its state, its ASGI app and its loopback server.

    The `ChainState` stays shared with the caller, so emulators in the same process drive
    it directly while clients (tronpy, httpx) read it over HTTP at `url`.
    """

    state: ChainState
    app: Starlette
    server: LoopbackServer

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:PORT` (tronpy appends `wallet/...`)."""
        return self.server.url

    @classmethod
    @contextlib.contextmanager
    def start(
        cls, state: ChainState, latency: float = 0.0, api_key: str | None = None, port: int = 0
    ) -> Iterator[TronNode]:
        """Serve `state` on 127.0.0.1 (`port` 0: chosen by the OS) until the block exits."""
        app = create_app(state, latency=latency, api_key=api_key)
        with serve(app, port=port) as server:
            yield cls(state, app, server)
