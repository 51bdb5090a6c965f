"""eopen adapter: the 19 codes, Decimal money, history parsing, wire shape."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from providers import eopen
from providers.base import (
    AmbiguousError,
    ErrorReason,
    OrderState,
    PermanentError,
    ProviderError,
    QuoteRequest,
    Receipt,
    TemporaryError,
)
from providers.http import NO_WAIT
from tests.providers.conftest import RECEIVER, Recorder, RecordingClock, load, make_order, reply

KEY = "eopen-key-42"
P, T, R = PermanentError, TemporaryError, ErrorReason

# Every documented code [C] (reference 3.4) with the mapping we promise in docs/providers.md.
CODES = [
    (100, P, R.INVALID_REQUEST),
    (11000, T, R.UNAVAILABLE),
    (11001, T, R.RATE_LIMITED),
    (11003, P, R.INVALID_REQUEST),
    (12002, P, R.NOT_FOUND),
    (20000, P, R.AUTH),
    (20001, P, R.AUTH),
    (20002, P, R.BALANCE),
    (20003, P, R.BALANCE),
    (20004, T, R.RATE_LIMITED),
    (20005, P, R.RECEIVER),
    (20006, P, R.INVALID_REQUEST),
    (20007, P, R.INVALID_REQUEST),
    (20008, P, R.INVALID_REQUEST),
    (20009, T, R.UNFULFILLABLE),
    (20010, P, R.INVALID_REQUEST),
    (20011, P, R.INVALID_REQUEST),
    (20012, P, R.AUTH),
]


def provider(rec: Recorder, clock: RecordingClock) -> eopen.EopenProvider:
    return eopen.EopenProvider(
        "eo", api_key=SecretStr(KEY), clock=clock, transport=rec.transport, retry=NO_WAIT
    )


def test_all_documented_codes_are_mapped() -> None:
    assert len(CODES) == 18 and set(eopen.ERRORS) == {c for c, _, _ in CODES}


@pytest.mark.parametrize(("code", "cls", "reason"), CODES)
async def test_code_mapping_on_create(
    clock: RecordingClock, code: int, cls: type[ProviderError], reason: ErrorReason
) -> None:
    rec = Recorder(reply(200, {"code": code, "msg": "x", "time": "1", "data": None}))
    # 11000 "operation failed, retry later" does not prove nothing was bought
    expected: type[ProviderError] = AmbiguousError if code in eopen.NOT_REFUSALS else cls
    with pytest.raises(expected) as info:
        await provider(rec, clock).place(make_order())
    assert type(info.value) is expected
    assert (info.value.reason, info.value.vendor_code) == (reason, str(code))


def test_unknown_code_is_permanent_unknown() -> None:
    with pytest.raises(PermanentError) as info:
        eopen._envelope_data("eo", {"code": 99999, "msg": "?"})
    assert info.value.reason is ErrorReason.UNKNOWN


async def test_create_wire_shape_and_receipt(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("eopen", "create_order.response.json")))
    receipt = await provider(rec, clock).place(make_order())
    sent = rec.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/api/v1/tron/order")
    assert sent.headers["API-KEY"] == KEY
    pinned = load("eopen", "create_order.request.json")["query"]
    assert set(sent.url.params) == set(pinned)
    assert sent.url.params["period"] == "1h" and sent.url.params["rentalCount"] == "65000"
    assert receipt.provider_order_id == "OR20250312175009BJ1QRQH7"
    assert receipt.cost_sun is None  # paid in USDT: no sun cost to report


def test_trx_cost_is_exact_sun() -> None:
    assert eopen._parse_create({"id": "OR1", "amount": 0.8, "currency": "TRX"}) == (
        "OR1",
        800_000,
    )
    assert eopen._parse_create({"id": "OR1", "amount": "4.225001", "currency": "TRX"})[1] == (
        4_225_001
    )


def test_price_is_the_larger_reading_in_integers() -> None:
    data = load("eopen", "price.response.json")["data"]
    # 65 sun x 65,000 = 4,225,000 sun; trxPrice "4.23" = 4,230,000 sun
    assert eopen._parse_price(data, 65000) == 4_230_000
    assert eopen._parse_price({"sun": "65", "trxPrice": "1"}, 65000) == 4_225_000


async def test_quote_sends_count_and_period(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("eopen", "price.response.json")))
    quote = await provider(rec, clock).quote(
        QuoteRequest(receiver=RECEIVER, energy=65000, duration=3600)
    )
    assert quote.total_sun == 4_230_000
    assert rec.requests[0].url.path == "/api/v1/tron/price"


def test_history_doc_example() -> None:
    data = load("eopen", "history.response.json")["data"]
    order = eopen._parse_history(data, "OR202503122009129TAH56UX")
    status = eopen._order_status(order, 99999, {})
    assert status.state is OrderState.DELEGATED
    assert status.delegated_energy == 32000  # from the string "32000"
    assert status.txids == ("6877a8e3217ce8b2ef409036c5d4d92c93641495bcba0c3e74da5e6d54fb03e5",)
    assert status.cost_sun is None


def test_history_as_a_list_is_searched() -> None:
    item = load("eopen", "history.response.json")["data"]
    other = item | {"orderId": "OR-OTHER", "status": "FAILED"}
    assert eopen._parse_history([other, item], item["orderId"]).status == "COMPLETED"
    with pytest.raises(ValueError):
        eopen._parse_history([other], item["orderId"])


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("COMPLETED", OrderState.DELEGATED),
        ("PENDING", OrderState.PENDING),
        ("PROCESSING", OrderState.DELEGATING),
        ("FAILED", OrderState.FAILED),
        ("REFUNDED", OrderState.REFUNDED),
        ("SOMETHING_ELSE", OrderState.PENDING),
    ],
)
def test_status_words(word: str, state: OrderState) -> None:
    order = eopen.EopenOrder("OR1", word, 64000, None, None, None)
    assert eopen._order_status(order, 64000, {}).state is state


async def test_status_and_balance_calls(clock: RecordingClock) -> None:
    rec = Recorder(
        reply(200, load("eopen", "history.response.json")),
        reply(200, load("eopen", "account.response.json")),
    )
    p = provider(rec, clock)
    receipt = Receipt(
        provider="eo",
        client_order_id="c",
        provider_order_id="OR202503122009129TAH56UX",
        receiver=RECEIVER,
        energy=32000,
        duration=3600,
    )
    assert (await p.status(receipt)).state is OrderState.DELEGATED
    assert rec.requests[0].url.params["orderId"] == receipt.provider_order_id
    assert await p.balance() == 125_500_000


@pytest.mark.parametrize(
    "data",
    [{"balance": {"available": {"trx": 1e400}}}, {"balance": "12"}, {"balance": {}}],
)
def test_malformed_account_is_a_payload_error(data: object) -> None:
    with pytest.raises(ValueError):
        eopen._parse_account(data)


async def test_wrong_types_in_create_answer_are_ambiguous(clock: RecordingClock) -> None:
    from providers.base import AmbiguousError

    rec = Recorder(reply(200, {"code": 0, "msg": "ok", "data": {"id": 12345}}))
    with pytest.raises(AmbiguousError) as info:
        await provider(rec, clock).place(make_order())
    assert info.value.reason is ErrorReason.PROTOCOL
