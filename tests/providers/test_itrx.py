"""itrx adapter: the documented signature, exact-bytes bodies, statuses, errors, callbacks."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from providers import itrx
from providers.base import (
    AmbiguousError,
    CallbackRejected,
    ErrorReason,
    OrderState,
    PermanentError,
    QuoteRequest,
    Receipt,
)
from providers.http import NO_WAIT
from providers.itrx_callbacks import verify_callback
from tests.providers.conftest import (
    RECEIVER,
    Recorder,
    RecordingClock,
    load,
    make_order,
    reply,
)

KEY, SECRET = "B433BFF1CDE7450AA38A56BEAC690DD4", "itrx-secret-0001"
VECTOR = load("itrx", "signing_vector.json")


def provider(rec: Recorder, clock: RecordingClock) -> itrx.ItrxProvider:
    return itrx.ItrxProvider(
        "it",
        api_key=SecretStr(KEY),
        api_secret=SecretStr(SECRET),
        clock=clock,
        transport=rec.transport,
        retry=NO_WAIT,
    )


def test_documented_signature_vector() -> None:
    body = itrx.canonical_json(load("itrx", "create_order.request.json"))
    assert body == VECTOR["body"]
    assert itrx.sign(VECTOR["api_secret"], VECTOR["timestamp"], body) == VECTOR["signature"]


def test_documented_1h_variant() -> None:
    data = load("itrx", "create_order.request.json") | {"period": "1H"}
    got = itrx.sign(VECTOR["api_secret"], VECTOR["timestamp"], itrx.canonical_json(data))
    assert got == VECTOR["variant_1H_signature"]


async def test_create_sends_exactly_the_bytes_it_signs(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("itrx", "create_order.response.json")))
    order = make_order(exclusive=True, activate=True, callback_url="https://cb.test/x?a=1")
    receipt = await provider(rec, clock).place(order)
    sent = rec.requests[0]
    assert sent.url.path == "/api/v1/frontend/order"
    assert sent.headers["TIMESTAMP"] == str(int(clock.now()))
    assert sent.headers["SIGNATURE"] == itrx.sign(
        SECRET, sent.headers["TIMESTAMP"], sent.content.decode()
    )
    assert sent.content == itrx.canonical_json(json.loads(sent.content)).encode()
    assert json.loads(sent.content) == {
        "energy_amount": 65000,
        "period": "1H",
        "receive_address": RECEIVER,
        "out_trade_no": "ord-0001",
        "exclusive": 1,
        "active": 1,
        "callback_url": "https://cb.test/x?a=1",
    }
    assert (receipt.provider_order_id, receipt.cost_sun) == (
        "7297a8a2a9e39b86fc5bad0d2e9edda2",
        3120000,
    )


def test_options_are_absent_unless_asked() -> None:
    body = itrx._build_order_body(make_order(duration=30 * 86400))
    assert body["period"] == "30D"
    assert not {"exclusive", "active", "callback_url"} & set(body)


async def test_non_ascii_fields_are_refused_before_sending(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {}))
    with pytest.raises(PermanentError):
        await provider(rec, clock).place(make_order(callback_url="https://cb.test/é"))
    assert rec.requests == []


def test_only_the_four_documented_periods() -> None:
    caps = itrx.ItrxProvider.capabilities
    assert caps.durations == (3600, 86400, 3 * 86400, 30 * 86400)
    assert not caps.accepts_duration(2 * 86400)


def test_doc_order_query_is_not_read_as_delivered() -> None:
    order = itrx._parse_order(load("itrx", "order_query.response.json"))
    status = itrx._order_status(order, {})
    # the sample says "30 = fully delegated" against the status table: never DELEGATED
    assert status.state is OrderState.PENDING
    assert status.txids == ("e2e71df638a9e01492a50bebba072a39eb75f673e91d5374ccf517f44e113f3",)
    assert status.cost_sun == 3800000


@pytest.mark.parametrize(
    ("code", "delegated", "refund", "state"),
    [
        (0, 0, 0, OrderState.FAILED),
        (10, 0, 0, OrderState.PENDING),
        (20, 0, 0, OrderState.PENDING),
        (30, 0, 0, OrderState.PENDING),
        (30, 5000, 0, OrderState.DELEGATING),
        (31, 16000, 0, OrderState.DELEGATING),
        (32, 0, 0, OrderState.PENDING),
        (40, 0, 0, OrderState.DELEGATED),
        (41, 0, 3800000, OrderState.REFUNDED),
        (43, 0, 3800000, OrderState.REFUNDED),
        (43, 0, 0, OrderState.FAILED),
        (43, 16000, 0, OrderState.PARTIAL),
        (77, 0, 0, OrderState.PENDING),
    ],
)
def test_status_codes(code: int, delegated: int, refund: int, state: OrderState) -> None:
    assert itrx._order_state(code, delegated, refund) is state


@pytest.mark.parametrize(
    ("status", "body", "reason", "vendor_code"),
    [
        (400, load("itrx", "error_fields.response.json"), ErrorReason.INVALID_REQUEST,
         "field:energy_amount,period"),
        (400, {"receive_address": ["invalid"]}, ErrorReason.RECEIVER, "field:receive_address"),
        (400, load("itrx", "error_detail.response.json"), ErrorReason.AUTH, "detail"),
        (400, {"detail": "Insufficient funds"}, ErrorReason.BALANCE, "detail"),
        (400, {"detail": "TXyz is the inactive address."}, ErrorReason.RECEIVER, "detail"),
        (403, {"detail": "Authentication credentials were not provided."}, ErrorReason.AUTH,
         "detail"),
    ],
)  # fmt: skip
async def test_http_400_shapes(
    clock: RecordingClock, status: int, body: object, reason: ErrorReason, vendor_code: str
) -> None:
    rec = Recorder(reply(status, body))
    with pytest.raises(PermanentError) as info:
        await provider(rec, clock).place(make_order())
    assert (info.value.reason, info.value.vendor_code) == (reason, vendor_code)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (load("itrx", "error_errno.response.json"), ErrorReason.BALANCE),
        (load("itrx", "error_order_not_found.response.json"), ErrorReason.NOT_FOUND),
    ],
)
def test_errno_envelope(body: object, reason: ErrorReason) -> None:
    with pytest.raises(PermanentError) as info:
        itrx._check_errno("it", body)
    assert info.value.reason is reason


async def test_create_is_not_retried_on_5xx(clock: RecordingClock) -> None:
    rec = Recorder(reply(502), reply(200, load("itrx", "create_order.response.json")))
    with pytest.raises(AmbiguousError):
        await provider(rec, clock).place(make_order())
    assert len(rec.requests) == 1


async def test_quote_limits_and_status(clock: RecordingClock) -> None:
    rec = Recorder(
        reply(200, load("itrx", "order_price.response.json")),
        reply(200, load("itrx", "index_data.response.json")),
        reply(200, load("itrx", "order_query.response.json") | {"status": 40}),
    )
    p = provider(rec, clock)
    quote = await p.quote(QuoteRequest(receiver=RECEIVER, energy=32000, duration=3 * 86400))
    assert quote.total_sun == 10192000
    assert rec.requests[0].url.params == httpx.QueryParams(period="3D", energy_amount="32000")
    limits = await p.limits()
    assert (limits.balance_sun, limits.min_order_energy) == (813892429257, 32000)
    receipt = Receipt(
        provider="it",
        client_order_id="c",
        provider_order_id="58b451473d290f92443eabf0322b9907",
        receiver=RECEIVER,
        energy=32000,
        duration=86400,
    )
    status = await p.status(receipt)
    assert status.state is OrderState.DELEGATED and status.delegated_energy == 32000
    assert rec.requests[2].url.params["serial"] == receipt.provider_order_id
    assert "SIGNATURE" not in rec.requests[2].headers  # GETs carry the API key only
    assert rec.requests[2].headers["API-KEY"] == KEY


async def test_empty_index_data_means_wrong_key(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {}))
    with pytest.raises(PermanentError) as info:
        await provider(rec, clock).balance()
    assert info.value.reason is ErrorReason.AUTH


# --------------------------------------------------------------------------- callbacks

CALLBACK = load("itrx", "callback.request.json")
NOW = 1_767_225_600


def _signed(body: str, ts: int = NOW) -> dict[str, str]:
    return {"TIMESTAMP": str(ts), "SIGNATURE": itrx.sign(SECRET, str(ts), body)}


def test_callback_signed_compact() -> None:
    body = itrx.canonical_json(CALLBACK)
    cb = verify_callback(_signed(body), body.encode(), SecretStr(SECRET), NOW)
    assert cb.state is OrderState.DELEGATED and cb.delegated_energy == 32000
    assert cb.out_trade_no == "123456"


def test_callback_signed_with_python_default_separators() -> None:
    spaced = json.dumps(CALLBACK, sort_keys=True)
    wire = json.dumps(CALLBACK)  # sent unsorted, spaced
    headers = {k.lower(): v for k, v in _signed(spaced).items()}
    cb = verify_callback(headers, wire.encode(), SecretStr(SECRET), NOW + 50)
    assert cb.serial == CALLBACK["serial"]


@pytest.mark.parametrize(
    ("headers", "body", "now"),
    [
        ({"TIMESTAMP": str(NOW), "SIGNATURE": "00" * 32}, None, NOW),
        (None, None, NOW + 101),
        ({"TIMESTAMP": str(NOW)}, None, NOW),
        (None, b"not json", NOW),
        (None, b'{"status": 40}', NOW),
    ],
    ids=["bad-signature", "stale", "no-signature", "not-json", "tampered"],
)
def test_callback_rejections(headers: dict[str, str] | None, body: bytes | None, now: int) -> None:
    compact = itrx.canonical_json(CALLBACK)
    with pytest.raises(CallbackRejected):
        verify_callback(
            headers or _signed(compact),
            body if body is not None else compact.encode(),
            SecretStr(SECRET),
            now,
        )


def test_secrets_stay_out_of_repr(clock: RecordingClock) -> None:
    p = provider(Recorder(reply(200, {})), clock)
    for text in (repr(p), repr(p._api.client.auth)):
        assert KEY not in text and SECRET not in text
