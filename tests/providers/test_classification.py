"""Every documented error answer of every vendor, classified three ways.

For each answer: what it is on a first create, on a retried create (an earlier attempt
with the same client order id may have been accepted) and on a read:

- refusal: `PermanentError`, nothing was bought, the next provider may be asked;
- temporary: `TemporaryError`, nothing was bought, the same call may succeed later;
- ambiguous: `AmbiguousError`, an order may exist: held until resolved.

A refusal is only what the vendor documents as one, made before anything was bought;
on a retried create nothing is a refusal. Reads are never ambiguous.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from providers import catfee, eopen, feee, itrx, mefree, netts, tronsave, tronzap
from providers.base import AmbiguousError, PermanentError, Provider, TemporaryError
from providers.http import NO_WAIT
from tests.providers.conftest import Handler, Recorder, RecordingClock, load, make_order, raw, reply

REFUSAL, TEMPORARY, AMBIGUOUS = "refusal", "temporary", "ambiguous"
CLASSES = {PermanentError: REFUSAL, TemporaryError: TEMPORARY, AmbiguousError: AMBIGUOUS}

#: (vendor, label, HTTP status, body, on a first create, on a read)
Row = tuple[str, str, int, Any, str, str]


def _mf(code: int, msg: str, sub_msg: str = "") -> dict[str, Any]:
    return {"code": code, "msg": msg, "sub_code": "", "sub_msg": sub_msg, "data": None}


MEFREE: list[Row] = [
    ("mefree", "HTTP 400 parameters", 400, _mf(400, "quantity must be >= 65000"), REFUSAL, REFUSAL),
    ("mefree", "HTTP 400 client_order_id exists", 400,
     _mf(400, "INVALID_PARAMETERS", "client_order_id already exists"), AMBIGUOUS, REFUSAL),
    ("mefree", "HTTP 401 signature", 401, _mf(401, "Invalid MF-ACCESS-SIGN"), REFUSAL, REFUSAL),
    ("mefree", "HTTP 429", 429, _mf(429, "Too many requests"), TEMPORARY, TEMPORARY),
    ("mefree", "code 1 balance", 200, _mf(1, "Insufficient balance"), REFUSAL, REFUSAL),
    ("mefree", "code 1 address", 200, _mf(1, "invalid target_address"), REFUSAL, REFUSAL),
    ("mefree", "code 1 address not exists", 200, _mf(1, "Account[T...] not exists"),
     REFUSAL, REFUSAL),
    ("mefree", "code 1 client_order_id exists", 200,
     _mf(1, "INVALID_PARAMETERS", "client_order_id already exists"), AMBIGUOUS, REFUSAL),
    ("mefree", "code 9999 UNKNOWN", 200, _mf(9999, "UNKNOWN"), AMBIGUOUS, REFUSAL),
    ("mefree", "code 2 unworded", 200, _mf(2, "system error"), AMBIGUOUS, REFUSAL),
    ("mefree", "HTTP 500", 500, None, AMBIGUOUS, TEMPORARY),
]  # fmt: skip

ITRX: list[Row] = [
    ("itrx", "HTTP 400 field list", 400,
     {"energy_amount": ["Please make sure the value is greater than or equal to 10000."]},
     REFUSAL, REFUSAL),
    ("itrx", "HTTP 400 receiver", 400, {"receive_address": ["Enter a valid TRON address."]},
     REFUSAL, REFUSAL),
    ("itrx", "HTTP 400 inactive address", 400, {"detail": "T... is the inactive address."},
     REFUSAL, REFUSAL),
    ("itrx", "HTTP 400 Insufficient funds", 400, {"detail": "Insufficient funds"},
     REFUSAL, REFUSAL),
    ("itrx", "HTTP 400 API not found", 400, {"detail": "API not found"}, REFUSAL, REFUSAL),
    ("itrx", "HTTP 401 detail", 401, {"detail": "Invalid signature"}, REFUSAL, REFUSAL),
    ("itrx", "HTTP 403 detail", 403, {"detail": "Forbidden"}, REFUSAL, REFUSAL),
    ("itrx", "HTTP 429", 429, {"detail": "throttled"}, TEMPORARY, TEMPORARY),
    ("itrx", "errno 1 names a balance", 200, {"errno": 1, "message": "Insufficient balance"},
     REFUSAL, REFUSAL),
    ("itrx", "errno 1 names a field", 200, {"errno": 1, "message": "period is not valid"},
     REFUSAL, REFUSAL),
    ("itrx", "errno 1 unnamed", 200, {"errno": 1, "message": "system busy"}, AMBIGUOUS, REFUSAL),
    ("itrx", "errno 404", 200, {"errno": 404, "message": "Order not found"}, REFUSAL, REFUSAL),
    ("itrx", "errno 7 undocumented", 200, {"errno": 7, "message": "?"}, AMBIGUOUS, REFUSAL),
    ("itrx", "HTTP 502", 502, None, AMBIGUOUS, TEMPORARY),
]  # fmt: skip

#: eopen's 18 documented codes [docs.eopen.io/errors], and an undocumented one
EOPEN: list[Row] = [
    ("eopen", f"code {code}", 200, {"code": code, "msg": "x", "time": "1", "data": None},
     AMBIGUOUS if code == 11000 else (TEMPORARY if cls is TemporaryError else REFUSAL),
     TEMPORARY if cls is TemporaryError else REFUSAL)
    for code, (cls, _, _) in sorted(eopen.ERRORS.items())
] + [
    ("eopen", "code 99999 undocumented", 200, {"code": 99999, "msg": "?", "time": "1"},
     AMBIGUOUS, REFUSAL),
    ("eopen", "HTTP 503", 503, None, AMBIGUOUS, TEMPORARY),
]  # fmt: skip

_TS_STATUS = {"API_KEY_REQUIRED": 401, "INVALID_API_KEY": 401, "FORBIDDEN": 403}
TRONSAVE: list[Row] = [
    ("tronsave", name, _TS_STATUS.get(name, 400),
     {"error": True, "message": f"TSAS:400 {name}", "data": None},
     TEMPORARY if cls is TemporaryError else REFUSAL,
     TEMPORARY if cls is TemporaryError else REFUSAL)
    for name, (cls, _) in sorted(tronsave.ERRORS.items())
    if name not in ("RATE_LIMIT", "FST_ERR_VALIDATION")
] + [
    ("tronsave", "FST_ERR_VALIDATION", 400,
     {"statusCode": 400, "code": "FST_ERR_VALIDATION", "error": "Bad Request",
      "message": "body must have required property 'receiver'"}, REFUSAL, REFUSAL),
    ("tronsave", "RATE_LIMIT", 429, {"error": True, "message": "Rate limit reached"},
     TEMPORARY, TEMPORARY),
    ("tronsave", "undocumented name", 400,
     {"error": True, "message": "TSAS:500 INTERNAL_SERVER_ERROR", "data": None},
     AMBIGUOUS, REFUSAL),
    ("tronsave", "error without a code", 200, {"error": True, "message": "oops", "data": None},
     AMBIGUOUS, REFUSAL),
    ("tronsave", "HTTP 500", 500, None, AMBIGUOUS, TEMPORARY),
]  # fmt: skip


def _cf(code: int, msg: str, sub_code: str = "") -> dict[str, Any]:
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": msg, "data": None}


def _cf_order(status: str) -> dict[str, Any]:
    order = {
        "id": "2671ba7b-a323-49e6-b4a4-19adca27ebbf",
        "status": status,
        "quantity": 70000,
        "pay_amount_sun": 0,
        "confirm_status": "UNCONFIRMED",
        "balance": 0,
    }
    return {"code": 0, "msg": "success", "sub_code": "", "sub_msg": "", "data": order}


#: CatFee: the FAQ's HTTP statuses, the refusal statuses of an order (as a status or as a
#: code, `catfee.failure`), and codes without a published list
CATFEE: list[Row] = [
    ("catfee", "HTTP 400 parameters", 400, _cf(400, "quantity must be >= 65000"),
     REFUSAL, REFUSAL),
    ("catfee", "HTTP 400 client_order_id exists", 400,
     _cf(400, "client_order_id already exists"), AMBIGUOUS, REFUSAL),
    ("catfee", "HTTP 401 signature", 401, _cf(401, "Invalid CF-ACCESS-SIGN"), REFUSAL, REFUSAL),
    ("catfee", "HTTP 429", 429, _cf(429, "Too Many Requests"), TEMPORARY, TEMPORARY),
    ("catfee", "code 1 balance", 200, _cf(1, "insufficient balance", "INSUFFICIENT_BALANCE"),
     REFUSAL, REFUSAL),
    ("catfee", "code 1 not activated", 200,
     _cf(1, "receiver is not activated", "ADDRESS_NOT_ACTIVATED"), REFUSAL, REFUSAL),
    ("catfee", "code 9999 unknown", 200, _cf(9999, "unknown"), AMBIGUOUS, REFUSAL),
    ("catfee", "code 1 system error", 200, _cf(1, "system error"), AMBIGUOUS, REFUSAL),
    *((("catfee", f"status {status}", 200, _cf_order(status), REFUSAL, REFUSAL))
      for status in sorted(catfee.REFUSED_STATUSES)),
    ("catfee", "HTTP 500", 500, None, AMBIGUOUS, TEMPORARY),
]  # fmt: skip


def _fe(msg: str) -> dict[str, Any]:
    return {
        "code": 1,
        "msg": msg,
        "request_id": "8f0e2a4c-1d3b-4e5f-9a7c-6b8d0e2f4a1c",
        "data": None,
    }


#: feee.io publishes no code list: `code != 0` with a `msg`, under HTTP 200 or a 4xx; a
#: refusal only when the words name what was refused. No idempotency key: never retried.
FEEE: list[Row] = [
    *(("feee", f"HTTP {status} {label}", status, _fe(msg), REFUSAL, REFUSAL)
      for status in (200, 400)
      for label, msg in (("key", "invalid key"), ("balance", "insufficient balance"),
                         ("address", "receive_address is not a valid address"),
                         ("amount", "resource_value must be at least 32000"),
                         ("duration", "rent_duration is not valid for this rent_time_unit"))),
    ("feee", "HTTP 401 key", 401, _fe("invalid key"), REFUSAL, REFUSAL),
    ("feee", "HTTP 404 route", 404, None, REFUSAL, REFUSAL),
    ("feee", "HTTP 429", 429, {"code": 429, "msg": "too many requests"}, TEMPORARY, TEMPORARY),
    ("feee", "code 1 unworded", 200, _fe("system busy"), AMBIGUOUS, REFUSAL),
    ("feee", "code 500 unworded", 200, {**_fe("error"), "code": 500}, AMBIGUOUS, REFUSAL),
    ("feee", "HTTP 502", 502, None, AMBIGUOUS, TEMPORARY),
]  # fmt: skip


def _tz(code: int | str, key: str = "x") -> dict[str, Any]:
    return {"code": code, "key": key, "request_id": "r", "error": "message"}


#: TronZap's documented codes [docs.tronzap.com/api/error-codes.html], and others
TRONZAP: list[Row] = [
    ("tronzap", f"code {code}", 200, _tz(code),
     AMBIGUOUS if not refusal else (TEMPORARY if cls is TemporaryError else REFUSAL),
     TEMPORARY if cls is TemporaryError else REFUSAL)
    for code, (cls, _, refusal) in sorted(tronzap.ERRORS.items())
] + [
    ("tronzap", "code 6 as text, HTTP 400", 400, _tz("6", "insufficient_funds"),
     REFUSAL, REFUSAL),
    ("tronzap", "code 77 undocumented", 200, _tz(77), AMBIGUOUS, REFUSAL),
    ("tronzap", "HTTP 429", 429, {"code": 429, "error": "Too Many Requests"},
     TEMPORARY, TEMPORARY),
    ("tronzap", "HTTP 500", 500, None, AMBIGUOUS, TEMPORARY),
]  # fmt: skip


def _nt(code: int, msg: str) -> dict[str, Any]:
    return {"detail": {"code": code, "msg": msg}}


#: Netts' documented HTTP refusals [doc.netts.io/api], and what proves nothing
NETTS: list[Row] = [
    ("netts", "HTTP 400 out of range", 400, _nt(400, "amount must be between 61000 and 5000000"),
     REFUSAL, REFUSAL),
    ("netts", "HTTP 401 key or IP", 401, _nt(-1, "Invalid API key or IP not in whitelist"),
     REFUSAL, REFUSAL),
    ("netts", "HTTP 401 older shape", 401,
     {"status": "error", "code": 401, "message": "Invalid API key or IP not in whitelist"},
     REFUSAL, REFUSAL),
    ("netts", "HTTP 403 balance", 403, _nt(403, "Insufficient balance"), REFUSAL, REFUSAL),
    ("netts", "HTTP 429", 429, _nt(429, "Rate limit exceeded"), TEMPORARY, TEMPORARY),
    ("netts", "HTTP 503 pools empty", 503, _nt(503, "No energy available"),
     AMBIGUOUS, TEMPORARY),
    ("netts", "code 20001 undocumented", 200, _nt(20001, "?"), AMBIGUOUS, REFUSAL),
    ("netts", "success false", 200, {"success": False, "msg": "failed"}, AMBIGUOUS, REFUSAL),
    ("netts", "HTTP 500", 500, None, AMBIGUOUS, TEMPORARY),
]  # fmt: skip

ROWS = MEFREE + ITRX + EOPEN + TRONSAVE + CATFEE + FEEE + TRONZAP + NETTS


def adapter(vendor: str, rec: Recorder) -> Provider:
    common: dict[str, Any] = {"clock": RecordingClock(), "transport": rec.transport}
    common["retry"] = NO_WAIT
    if vendor == "mefree":
        return mefree.MefreeProvider(
            "mf", api_key=SecretStr("k"), api_secret=SecretStr("s"), **common
        )
    if vendor == "itrx":
        return itrx.ItrxProvider("it", api_key=SecretStr("k"), api_secret=SecretStr("s"), **common)
    if vendor == "eopen":
        return eopen.EopenProvider("eo", api_key=SecretStr("k"), **common)
    if vendor == "feee":
        return feee.FeeeProvider("fe", api_key=SecretStr("k"), **common)
    if vendor == "catfee":
        return catfee.CatFeeProvider(
            "cf", api_key=SecretStr("k"), api_secret=SecretStr("s"), **common
        )
    if vendor == "netts":
        return netts.NettsProvider("nt", api_key=SecretStr("k"), real_ip="127.0.0.1", **common)
    if vendor == "tronzap":
        return tronzap.TronZapProvider(
            "tz", api_key=SecretStr("k"), api_secret=SecretStr("s"), **common
        )
    return tronsave.TronsaveProvider("ts", api_key=SecretStr("k"), **common)


def answer(status: int, body: Any, vendor: str = "") -> Any:
    handler = reply(status, body, **({"retry-after": "3600"} if status == 429 else {}))
    return _after_services(handler) if vendor == "tronzap" else handler


def _after_services(handler: Handler) -> Handler:
    """TronZap reads its services list before a create: that read succeeds."""
    listed = reply(200, load("tronzap", "services.response.json"))

    def dispatch(request: Any) -> Any:
        return (listed if request.url.path == "/v1/services" else handler)(request)

    return dispatch


async def classify(call: Any) -> str:
    try:
        await call
    except (AmbiguousError, PermanentError, TemporaryError) as exc:
        return CLASSES[type(exc)]
    raise AssertionError("the call succeeded")


def test_every_documented_code_is_in_the_table() -> None:
    assert {r[1] for r in EOPEN} >= {f"code {c}" for c in eopen.ERRORS}
    assert len(eopen.ERRORS) == 18
    assert {r[1] for r in TRONSAVE} >= set(tronsave.ERRORS)
    assert {r[1] for r in CATFEE} >= {f"status {s}" for s in catfee.REFUSED_STATUSES}
    assert {r[1] for r in TRONZAP} >= {f"code {c}" for c in tronzap.ERRORS}


@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
async def test_classification(row: Row) -> None:
    vendor, _, status, body, on_create, on_read = row
    order = make_order(energy=70_000)
    seen = {}
    for context in ("first create", "retried create", "read"):
        rec = Recorder(answer(status, body, vendor))
        provider = adapter(vendor, rec)
        if context == "read":
            seen[context] = await classify(provider.balance())
        else:
            retry = context == "retried create"
            seen[context] = await classify(
                provider.place(order.model_copy(update={"retry": retry}))
            )
        await provider.aclose()
    assert seen == {"first create": on_create, "retried create": AMBIGUOUS, "read": on_read}


@pytest.mark.parametrize("row", MEFREE[:-1], ids=[r[1] for r in MEFREE[:-1]])
async def test_mefree_refusal_after_its_own_retry_is_ambiguous(row: Row) -> None:
    """The adapter's own retry (idempotent create after a 5xx): the answer is ambiguous."""
    _, _, status, body, _, _ = row
    rec = Recorder(reply(500, None), answer(status, body))
    provider = adapter("mefree", rec)
    assert await classify(provider.place(make_order())) == AMBIGUOUS
    assert len(rec.requests) == 2
    await provider.aclose()


async def test_unparsable_2xx_on_a_create_is_ambiguous() -> None:
    for vendor in ("mefree", "itrx", "eopen", "tronsave", "catfee", "feee", "tronzap", "netts"):
        rec = Recorder(_html(vendor))
        provider = adapter(vendor, rec)
        assert await classify(provider.place(make_order(energy=70_000))) == AMBIGUOUS, vendor
        await provider.aclose()


def _html(vendor: str) -> Handler:
    html = raw(200, b"<html>OK</html>")
    return _after_services(html) if vendor == "tronzap" else html
