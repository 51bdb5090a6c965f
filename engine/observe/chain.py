"""Reading the chain: energy snapshots of addresses, node heads and blocks, from any node.

`ChainReader` talks to a TRON full node's HTTP API (the sandbox emulator, the user's own
node, or TronGrid with an API key) through tronpy's `AsyncTron` on an httpx client that
this module builds, so that the transport seam (`transport=`), the connection limits, the
timeout and the API-key header are ours. Every node failure becomes a `ChainTemporaryError`
(retry later) or a `ChainPermanentError` (this request can never succeed, e.g. a malformed
address); an unactivated address is a state (`EnergySnapshot.activated`), not an error.

Facts relied on (java-tron's HTTP servlets, https://github.com/tronprotocol/java-tron,
`Util.processError`, `JsonFormat`, `EnergyProcessor`; tronpy, https://github.com/andelf/tronpy):
errors come back as HTTP 200 `{"Error": ...}` bodies that tronpy returns as data; a missing
account is `{}`; zero fields are omitted, but the network totals are always there, so an
answer without them is junk and a failed read, never "0 energy" (never buy blind);
available energy is `max(0, EnergyLimit - EnergyUsed)` (the node clamps too), never
tronpy's unclamped `get_energy`.

Neighbours: `engine/observe/following.py` reads blocks through `ChainReader` and tells the engine
which addresses to re-read; `engine/core/clock.py` gives time (read stamps, the rate limiter).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx
from pydantic import SecretStr
from tronpy import AsyncTron
from tronpy.exceptions import AddressNotFound, ApiError, BadAddress, BugInJavaTron, NotFound
from tronpy.keys import to_base58check_address, to_hex_address
from tronpy.providers.async_http import AsyncHTTPProvider

from engine.core.clock import Clock
from engine.core.errors import EngineError
from engine.core.snapshots import EnergySnapshot
from providers.http import RateLimiter

API_KEY_HEADER = "TRON-PRO-API-KEY"
#: the most blocks `/wallet/getblockbylimitnext` returns at once (java-tron's BLOCK_LIMIT_NUM)
BLOCKS_PER_CALL = 100

# --------------------------------------------------------------------------- errors


class ChainError(EngineError):
    """Base of every failure to observe the chain. Messages never contain credentials."""


class ChainTemporaryError(ChainError):
    """The node did not answer usefully now (down, slow, rate limited, error body)."""


class ChainPermanentError(ChainError):
    """The request itself is wrong (a malformed address); retrying cannot help."""


ObservationError = ChainError

# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class NodeHeads:
    """The node's head block (number and id) and its latest solidified block number."""

    number: int
    block_id: str
    solid: int


# --------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=1 << 18)
def canonical_address(address: str) -> str:
    """The base58check form of `address` (base58 or `41...` hex); ChainPermanentError if bad."""
    try:
        return str(to_base58check_address(address))
    except (BadAddress, ValueError, TypeError, IndexError) as exc:
        raise ChainPermanentError(f"not a TRON address: {address!r}") from exc


def public_url(url: str) -> str:
    """`url` without user info, query or fragment: safe to print in messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


#: what java-tron's getaccountresource always prints for an existing account
#: (`Wallet.getAccountResource`, github.com/tronprotocol/java-tron): the network totals are
#: chain-wide figures, never zero, so never omitted (the account's own energy fields are
#: omitted when zero). A body without them is not a reading of an account with
#: no energy but junk (a proxy's or a busy node's own JSON): a failed read, never 0 energy.
ALWAYS_SENT_RESOURCE = ("TotalEnergyLimit", "TotalEnergyWeight")
#: what getaccount always prints for an existing account
ALWAYS_SENT_ACCOUNT = ("address",)


def _require(data: Mapping[str, Any], keys: Iterable[str]) -> None:
    """ValueError naming the first of `keys` missing from `data` (a node's answer)."""
    missing = [key for key in keys if key not in data]
    if missing:
        shown = ", ".join(sorted(str(k) for k in data)[:8]) or "none"
        raise ValueError(f"no {missing[0]} in the answer (keys: {shown})")


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if type(value) is not int:
        raise TypeError(f"{key} is {value!r}, not an integer")
    return value


# --------------------------------------------------------------------------- the reader


class ChainReader:
    """Reads energy snapshots and blocks from one node; use as an async context manager.

    `concurrency` bounds requests in flight; `rate_limit_per_s`, when set, paces every
    request on `clock`. With `api_key`, the `TRON-PRO-API-KEY` header goes with every
    request whatever the URL (tronpy only sends a key when the URL contains "trongrid", and
    would otherwise send its own shared keys: that logic is switched off).

    Requests go through `concurrency` lanes, each a tronpy `AsyncTron` on its own httpx
    client holding one connection; a request takes an idle lane and gives it back. One
    httpx pool of N connections costs O(N) per request (httpcore re-scans every connection
    for every queued request): at N = 200 that made the pool, not the network, the limit
    (docs/observation.md has the figures). Lanes share one TLS context.
    """

    def __init__(
        self,
        node_url: str,
        *,
        api_key: SecretStr | None,
        clock: Clock,
        concurrency: int = 64,
        rate_limit_per_s: float | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_head_age: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.node = public_url(node_url)
        self._clock = clock
        self._timeout = timeout
        self._concurrency = concurrency
        #: a head block older than this (clock seconds) means the node stopped following
        #: the chain: its answers are stale, and reads fail (never buy blind). None: no check.
        self.max_head_age = max_head_age
        self._bucket = (
            RateLimiter(rate_limit_per_s, burst=1, clock=clock) if rate_limit_per_s else None
        )
        headers = {API_KEY_HEADER: api_key.get_secret_value()} if api_key is not None else {}
        base = node_url if node_url.endswith("/") else node_url + "/"
        tls = _tls_context()
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._clients: list[httpx.AsyncClient] = []
        self._idle: asyncio.Queue[Any] = asyncio.Queue()  # of AsyncTron
        for _ in range(concurrency):
            client = httpx.AsyncClient(
                transport=transport or httpx.AsyncHTTPTransport(verify=tls, limits=one),
                timeout=httpx.Timeout(timeout),
                headers=headers,
                verify=tls,
            )
            provider = AsyncHTTPProvider(base, timeout=timeout, client=client)
            provider.use_api_key = False  # our header above, for every URL; no shared keys
            self._clients.append(client)
            self._idle.put_nowait(AsyncTron(provider))

    def __repr__(self) -> str:
        return f"ChainReader(node={self.node!r}, concurrency={self._concurrency})"

    async def __aenter__(self) -> ChainReader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    # ------------------------------------------------------------------ one request

    async def _request(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST `path` through tronpy's provider; see `_call`."""
        return await self._call(path, lambda tron: tron.provider.make_request(path, body))

    async def _call(self, path: str, call: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run one tronpy call on an idle lane, under the rate limit; map failures.

        tronpy's NotFound (`{}` answers) passes through for the caller to interpret.
        """
        tron = await self._idle.get()
        try:
            if self._bucket is not None:
                await self._bucket.acquire()
            data = await call(tron)
        except NotFound:
            raise
        except httpx.TimeoutException as exc:
            raise self._temporary(path, f"no answer within {self._timeout}s") from exc
        except httpx.HTTPStatusError as exc:
            raise self._temporary(path, _describe_status(exc.response)) from exc
        except httpx.HTTPError as exc:
            raise self._temporary(path, f"{type(exc).__name__}: {exc}") from exc
        except BugInJavaTron as exc:  # get_block's name for an {"Error": ...} body
            raise self._temporary(path, f"node error: {str(exc)[:200]}") from exc
        except (ValueError, ApiError) as exc:  # a body that is not JSON
            raise self._temporary(path, f"unreadable answer ({type(exc).__name__})") from exc
        finally:
            self._idle.put_nowait(tron)
        if isinstance(data, dict) and "Error" in data:  # tronpy hands error bodies back as data
            raise self._temporary(path, f"node error: {str(data['Error'])[:200]}")
        return data

    def _temporary(self, path: str, cause: str) -> ChainTemporaryError:
        return ChainTemporaryError(f"node {self.node} /{path}: {cause}")

    def _malformed(self, path: str, exc: Exception) -> ChainTemporaryError:
        return self._temporary(path, f"unexpected answer: {exc}")

    # ------------------------------------------------------------------ snapshots

    async def heads(self) -> NodeHeads:
        """Head block number and id, and the latest solidified block (`getnodeinfo`)."""
        path = "wallet/getnodeinfo"
        info = await self._request(path)
        try:
            number, block_id = _parse_block_ref(info["block"])
            solid, _ = _parse_block_ref(info["solidityBlock"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self._malformed(path, exc) from exc
        return NodeHeads(number=number, block_id=block_id, solid=solid)

    async def _check_head_age(self) -> None:
        """Raise ChainTemporaryError when the node's head block is older than
        `max_head_age`: a node that stopped following the chain answers with old state."""
        if self.max_head_age is None:
            return
        path = "wallet/getnowblock"
        block = await self._request(path)
        try:
            raw = block["block_header"]["raw_data"]
            stamp = _int(raw, "timestamp") / 1000
            number = _int(raw, "number")
        except (KeyError, TypeError, AttributeError) as exc:
            raise self._malformed(path, exc) from exc
        age = self._clock.now() - stamp
        if age > self.max_head_age:
            raise self._temporary(
                path,
                f"head block {number} is {age:.0f}s old (limit {self.max_head_age:.0f}s): "
                "the node is not following the chain",
            )

    async def snapshot(self, address: str, *, delegators: bool = False) -> EnergySnapshot:
        """One address's energy now; raises ChainTemporaryError / ChainPermanentError."""
        canonical = canonical_address(address)
        heads = await self.heads()
        await self._check_head_age()
        return await self._read(canonical, heads.number, delegators)

    async def snapshots(
        self, addresses: Iterable[str], *, delegators: bool = False
    ) -> dict[str, EnergySnapshot | ChainError]:
        """Snapshots of many addresses, keyed as given; a failure is that address's value.

        All snapshots carry the head read once at the start of the batch.
        """
        todo = list(dict.fromkeys(addresses))
        results: dict[str, EnergySnapshot | ChainError] = {}
        try:
            block = (await self.heads()).number
            await self._check_head_age()
        except ChainError as exc:
            return dict.fromkeys(todo, exc)
        pending = iter(todo)

        async def work() -> None:
            for given in pending:
                try:
                    results[given] = await self._read(canonical_address(given), block, delegators)
                except ChainError as exc:
                    results[given] = exc

        await asyncio.gather(*(work() for _ in range(min(self._concurrency, len(todo)))))
        return {given: results[given] for given in todo}

    async def _read(self, address: str, block: int, with_delegators: bool) -> EnergySnapshot:
        path = "wallet/getaccountresource"
        try:
            resource = await self._call(path, lambda tron: tron.get_account_resource(address))
        except AddressNotFound:  # `{}`: unactivated, a state
            return EnergySnapshot(address, False, 0, 0, 0, 0, block, self._clock.now())
        read_at = self._clock.now()
        try:
            _require(resource, ALWAYS_SENT_RESOURCE)
            limit = _int(resource, "EnergyLimit")
            used = _int(resource, "EnergyUsed")
            total_limit = _int(resource, "TotalEnergyLimit")
            total_weight = _int(resource, "TotalEnergyWeight")
        except (AttributeError, TypeError, ValueError) as exc:
            raise self._malformed(path, exc) from exc
        path = "wallet/getaccount"
        try:
            account = await self._call(path, lambda tron: tron.get_account(address))
        except AddressNotFound as exc:  # gone between the two reads: not plausible
            raise self._malformed(path, exc) from exc
        try:
            _require(account, ALWAYS_SENT_ACCOUNT)
            res = account.get("account_resource", {})
            delegated_in = _int(res, "acquired_delegated_frozenV2_balance_for_energy") + _int(
                res, "acquired_delegated_frozen_balance_for_energy"
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise self._malformed(path, exc) from exc
        by_delegator = await self.delegators(address) if with_delegators else None
        return EnergySnapshot(
            address=address,
            activated=True,
            available=max(0, limit - used),
            limit=limit,
            used=used,
            delegated_in=delegated_in,
            block=block,
            read_at=read_at,
            total_energy_limit=total_limit,
            total_energy_weight=total_weight,
            delegators=by_delegator,
        )

    async def delegators(self, address: str) -> dict[str, int]:
        """Sun of energy stake delegated to `address`, per delegator (Stake 2.0).

        Costs one call for the index (`/wallet/getdelegatedresourceaccountindexv2`) plus one
        per delegator (`/wallet/getdelegatedresourcev2`).
        """
        receiver = canonical_address(address)
        path = "wallet/getdelegatedresourceaccountindexv2"
        index = await self._call(
            path, lambda tron: tron.get_delegated_resource_account_index_v2(receiver)
        )
        try:
            senders = [canonical_address(a) for a in index.get("fromAccounts", [])]
        except (AttributeError, ChainPermanentError) as exc:
            raise self._malformed(path, exc) from exc
        amounts = await asyncio.gather(*(self._delegated(s, receiver) for s in senders))
        return {s: amount for s, amount in zip(senders, amounts, strict=True) if amount > 0}

    async def _delegated(self, sender: str, receiver: str) -> int:
        path = "wallet/getdelegatedresourcev2"
        answer = await self._call(
            path, lambda tron: tron.get_delegated_resource_v2(sender, receiver)
        )
        try:
            return sum(
                _int(r, "frozen_balance_for_energy") for r in answer.get("delegatedResource", [])
            )
        except (AttributeError, TypeError) as exc:
            raise self._malformed(path, exc) from exc

    # ------------------------------------------------------------------ tokens

    async def token_balance(self, token: str, owner: str) -> int:
        """`owner`'s balance of the TRC-20 contract `token` (base58 both): `balanceOf` run
        by the node without a transaction (`/wallet/triggerconstantcontract`,
        https://developers.tron.network/reference/triggerconstantcontract)."""
        path = "wallet/triggerconstantcontract"
        body = {
            "owner_address": owner,
            "contract_address": token,
            "function_selector": "balanceOf(address)",
            "parameter": to_hex_address(owner)[2:].rjust(64, "0"),
            "visible": True,
        }
        answer = await self._request(path, body)
        try:
            if not answer["result"].get("result", False):
                raise ValueError(f"call refused: {str(answer['result'])[:200]}")
            return int(answer["constant_result"][0] or "0", 16)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise self._malformed(path, exc) from exc

    # ------------------------------------------------------------------ blocks

    async def block(self, number: int) -> dict[str, Any] | None:
        """Block `number` with its transactions (addresses in base58), None if not there yet."""
        path = "wallet/getblockbynum"
        try:
            block = await self._call(path, lambda tron: tron.get_block(number, visible=True))
        except NotFound:  # `{}`: not produced yet
            return None
        if not isinstance(block, dict) or "block_header" not in block:
            raise self._malformed(path, ValueError("no block_header"))
        return block

    async def blocks(self, start: int, end: int) -> list[dict[str, Any]]:
        """Blocks `start` .. `end - 1` with their transactions (base58), at most
        `BLOCKS_PER_CALL`, in one call (`/wallet/getblockbylimitnext`; java-tron's
        GetBlockByLimitNextServlet answers `{}` for an empty or too long range,
        https://github.com/tronprotocol/java-tron/blob/develop/framework/src/main/java/org/tron/core/services/http/GetBlockByLimitNextServlet.java).
        Fewer than asked when the node has not produced them all yet."""
        if not 0 <= start < end or end - start > BLOCKS_PER_CALL:
            raise ValueError(f"a range of 1 to {BLOCKS_PER_CALL} blocks, got {start}..{end}")
        path = "wallet/getblockbylimitnext"
        answer = await self._request(path, {"startNum": start, "endNum": end, "visible": True})
        if answer == {}:
            return []
        try:
            found = answer["block"]
            if not isinstance(found, list) or not all("block_header" in b for b in found):
                raise ValueError("not a list of blocks")
        except (KeyError, TypeError, ValueError) as exc:
            raise self._malformed(path, exc) from exc
        return sorted(found, key=lambda b: int(b["block_header"]["raw_data"].get("number", 0)))

    async def energy_fee(self) -> int:
        """The chain's price of energy when burning, sun per energy: `getEnergyFee` of
        `/wallet/getchainparameters` (https://developers.tron.network/reference/wallet-getchainparameters)."""
        path = "wallet/getchainparameters"
        answer = await self._request(path)
        try:
            for item in answer["chainParameter"]:
                if item.get("key") == "getEnergyFee":
                    return int(item["value"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._malformed(path, exc) from exc
        raise self._malformed(path, ValueError("no getEnergyFee"))

    async def block_infos(self, number: int) -> list[dict[str, Any]]:
        """The transaction infos (receipts) of block `number`; [] for an empty block."""
        path = "wallet/gettransactioninfobyblocknum"
        infos = await self._request(path, {"num": number, "visible": True})
        if infos == {}:
            return []
        if not isinstance(infos, list):
            raise self._malformed(path, ValueError(f"a {type(infos).__name__}, not a list"))
        return infos


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context (httpx's default trust store) shared by every lane and reader."""
    return ssl.create_default_context(cafile=certifi.where())


def _parse_block_ref(text: str) -> tuple[int, str]:
    """`"Num:66987565,ID:0000..."` (getnodeinfo) -> (66987565, "0000...")."""
    num, _, block_id = text.partition(",ID:")
    return int(num.removeprefix("Num:")), block_id


def _describe_status(response: httpx.Response) -> str:
    status = response.status_code
    kind = "rate limited or out of quota" if status in (403, 429) else "refused"
    if status >= 500:
        kind = "server error"
    detail = ""
    try:
        body = response.json()
        if isinstance(body, dict) and "Error" in body:
            detail = f": {str(body['Error'])[:200]}"
    except ValueError:
        pass
    return f"HTTP {status} ({kind}){detail}"
