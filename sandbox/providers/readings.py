"""Readings: the switchable answers of the emulators where a vendor's docs allow two.

The adapters and the emulators were written from one reading of the vendors' documents;
a real vendor may have taken the other. Each point a document leaves open is a named
reading (`vendor.key`) with the choices the document's words allow; the default is the
most likely one. `Readings.parse("mefree.duplicate=error,eopen.params=body")` builds a
set (an unknown name or value is refused with the valid ones), and each emulator takes
one (`MefreeEmulator(..., readings=r)`) and asks it `value(vendor, key)`.

`READINGS` lists them all, with the document's words that allow each: the contract suite
runs over every choice (`all_single()`), and docs/sandbox-providers.md lists them.
`energyctl sandbox --world-only --reading ...` serves a world with chosen readings.

Neighbours: `emulating.py` (holds an emulator's readings), the four vendor emulators.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass


class ReadingError(ValueError):
    """A reading name or value that does not exist."""


@dataclass(frozen=True)
class Reading:
    """One open point of a vendor's docs and the answers the emulator can give to it."""

    vendor: str
    key: str
    #: the allowed values; None for a number (`numeric`)
    choices: tuple[str, ...] | None
    default: str
    #: the document's words that leave the point open, and what each choice does
    words: str

    @property
    def name(self) -> str:
        return f"{self.vendor}.{self.key}"

    def check(self, value: str) -> str:
        if self.choices is None:
            try:
                number = float(value)
            except ValueError:
                raise ReadingError(f"{self.name} takes a number, not {value!r}") from None
            if number < 0:
                raise ReadingError(f"{self.name} must be >= 0, got {value!r}")
            return value
        if value not in self.choices:
            raise ReadingError(f"{self.name} is one of {', '.join(self.choices)}, not {value!r}")
        return value

    def alternatives(self) -> tuple[str, ...]:
        """The non-default values the contract suite runs (a number: one alternative)."""
        if self.choices is not None:
            return tuple(c for c in self.choices if c != self.default)
        return ALTERNATIVE_NUMBERS.get(self.name, ())


READINGS: tuple[Reading, ...] = (
    Reading(
        "mefree",
        "duplicate",
        ("existing", "error", "error400"),
        "existing",
        'Create order, `client_order_id`: a previously used value "will not create a new '
        'order"; what the repeat answers is not said. existing: the existing order as a '
        "success; error: `{code: 1, msg: INVALID_PARAMETERS, sub_msg: client_order_id "
        "already exists}` (HTTP 200); error400: the same refusal as an HTTP 400.",
    ),
    Reading(
        "mefree",
        "envelope",
        ("wrapped", "bare"),
        "wrapped",
        "Responses: the schema shows `{code, msg, sub_code, sub_msg, data}`, the create-order "
        "page's example a bare order object. bare: successes without the envelope.",
    ),
    Reading(
        "mefree",
        "window",
        None,
        "5",
        'Java guide, common issues: the timestamp must be UTC and "not older than 5 '
        'seconds". The number of seconds a signed timestamp may be off; on a sped-up '
        "clock it is judged in real seconds.",
    ),
    Reading(
        "feee",
        "v3_path",
        ("create", "submit", "both"),
        "create",
        "V3 create order: the page is headed `POST /v3/order/create`, its curl example posts "
        "to `/open/v3/order/submit`. create / submit: only that path exists (the other is a "
        "404); both: either.",
    ),
    Reading(
        "feee",
        "error_status",
        ("200", "400"),
        "200",
        "Failures are `code != 0` with a `msg`; the HTTP status that goes with them is not "
        "documented. 400: an error envelope comes with HTTP 400.",
    ),
    Reading(
        "feee",
        "minimum",
        None,
        "32000",
        "No minimum `resource_value` is documented; the smallest order in the docs' examples "
        "is 32,000. The smallest order accepted (a smaller one: code 1, naming "
        "resource_value).",
    ),
    Reading(
        "itrx",
        "status30",
        ("preparing", "delegated"),
        "preparing",
        'Order query: the status table says 30 "delegation in preparation", 40 "normal '
        'completion"; the sample response says "30 means fully delegated". preparing: 30 '
        "before the delegation, 40 once delegated; delegated: 30 while delegated, 40 only "
        "when the rental ended.",
    ),
    Reading(
        "itrx",
        "out_trade_no",
        ("echo", "unique"),
        "echo",
        "Create order, `out_trade_no`: your reference, echoed back in the callback; "
        "nothing says whether a repeat is refused. echo: any value; unique: a value used "
        'before is refused with `{errno: 1, message: "out_trade_no already exists"}`.',
    ),
    Reading(
        "catfee",
        "failure",
        ("status", "code"),
        "status",
        "Order statuses INSUFFICIENT_BALANCE, QUANTITY_TOO_HIGH/LOW, ADDRESS_NOT_ACTIVATED, "
        "INVALID_ADDRESS; whether a create answers them as the order's status or as a "
        "non-zero code is not said. status: an order (never paid) with that status; code: "
        "HTTP 200 `{code: 1, sub_code: INSUFFICIENT_BALANCE}` (or ADDRESS_NOT_ACTIVATED).",
    ),
    Reading(
        "catfee",
        "replay",
        ("snapshot", "current"),
        "snapshot",
        'Idempotent requests: the same `client_order_id` again "returns the previous order '
        'response without charging or creating a new order". snapshot: the first answer as '
        "it was; current: the order as it is now.",
    ),
    Reading(
        "catfee",
        "window",
        None,
        "5",
        "FAQ: a 401 when the timestamp deviates by 5 seconds or more; a third-party client "
        "notes 30. The number of seconds a signed timestamp may be off.",
    ),
    Reading(
        "eopen",
        "params",
        ("both", "query", "body"),
        "both",
        'Create order: headed "POST", every curl example sends the parameters with `-G` '
        "(query string), the migration notes show a JSON body. both: the query and the "
        "body are read; query / body: only that one on a POST (the other is ignored, "
        "11003); a GET's query is always read.",
    ),
    Reading(
        "eopen",
        "error_status",
        ("200", "400"),
        "200",
        "Errors page: the codes are listed, the HTTP status that goes with them is not. "
        "400: a non-zero code comes with HTTP 400.",
    ),
    Reading(
        "eopen",
        "history",
        ("all", "completed"),
        "all",
        'History: "query recently completed orders". all: every order is found; '
        "completed: an order not yet delegated answers 12002 (order does not exist).",
    ),
    Reading(
        "eopen",
        "completed",
        ("delegated", "ended"),
        "delegated",
        "History statuses COMPLETED, PENDING, PROCESSING, FAILED, REFUNDED, without their "
        "meaning. delegated: COMPLETED once delegated; ended: PROCESSING while delegated, "
        "COMPLETED only once the rental ended.",
    ),
    Reading(
        "tronsave",
        "minimum",
        None,
        "32000",
        "No minimum `resourceAmount` is documented for the API; the docs' examples order "
        "32,000 and the official SDK refuses 64,000 or less. The smallest order accepted "
        "(a smaller one: INVALID_PARAMS).",
    ),
    Reading(
        "tronsave",
        "max_price",
        ("at_most", "below"),
        "at_most",
        "`options.maxPriceAccepted`: reject (PRICE_EXCEED_MAX_PRICE_REQUIRED) if the "
        "estimated price is above it. at_most: a price equal to it is accepted; below: a "
        'price equal to it is refused too ("less than").',
    ),
    Reading(
        "tronzap",
        "duplicate",
        ("second", "existing", "refused"),
        "second",
        "Create transaction, `external_id`: accepted and usable with `transaction/check`; "
        "nothing says a repeat is refused or answered with the first. second: a second "
        "transaction is made and charged (check by external id answers the latest); "
        "existing: the first is answered, nothing charged; refused: code 2 "
        "`invalid_service_or_params.external_id`.",
    ),
    Reading(
        "tronzap",
        "durations",
        ("1", "1,24"),
        "1",
        'Create transaction, `params.duration` in hours: the English docs say "1 or 24", '
        'the newer ones and the `invalid_duration` message "only 1". The durations the '
        "services list offers (and the create accepts).",
    ),
    Reading(
        "tronzap",
        "minimum",
        None,
        "32000",
        'Services: the SDK fixture lists `min_amount` 32,000; the SDK READMEs say "From '
        '60000" since 2025-05. The smallest energy amount the services list offers (and '
        "the create accepts).",
    ),
    Reading(
        "tronzap",
        "amount_field",
        ("precedence", "legacy"),
        "precedence",
        "Create transaction: the amount as `params.amounts.energy` (current), "
        "`params.amount` or `params.energy_amount` (deprecated), read in that order. "
        "legacy: only `energy_amount` is read, as in the older docs' example.",
    ),
    Reading(
        "tronzap",
        "error_status",
        ("200", "400"),
        "200",
        "Errors: the error envelope comes with HTTP 200; the official SDKs also accept it "
        "with 400/422/429/500. 400: every error envelope comes with HTTP 400.",
    ),
    Reading(
        "netts",
        "sync",
        ("hash", "later"),
        "hash",
        "order1h/order5m: the success example carries the delegation `hash`; nothing "
        "promises the delegation is always made before the answer. hash: it is; later: "
        "an empty `hash`, the delegation a few seconds after (seen in `order_check`).",
    ),
    Reading(
        "netts",
        "energy",
        ("exact", "more"),
        "exact",
        "order1h: `energy` in the answer; a third-party sample shows 131,050 delegated for "
        "131,000 ordered. exact: the amount ordered; more: 50 more.",
    ),
)

#: the alternative values of numeric readings that the contract suite runs
ALTERNATIVE_NUMBERS: Mapping[str, tuple[str, ...]] = {
    "catfee.window": ("30",),
    "feee.minimum": ("65000",),
    "mefree.window": ("300",),
    "tronsave.minimum": ("64001",),
    "tronzap.minimum": ("60000",),
}

_BY_NAME: Mapping[str, Reading] = {r.name: r for r in READINGS}


class Readings:
    """A choice for some readings; every other reading has its default."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        checked: dict[str, str] = {}
        for name, value in (values or {}).items():
            reading = _BY_NAME.get(name)
            if reading is None:
                raise ReadingError(
                    f"unknown reading {name!r}; valid: {', '.join(sorted(_BY_NAME))}"
                )
            checked[name] = reading.check(value)
        self._values = checked

    @classmethod
    def parse(cls, specs: str | Iterable[str]) -> Readings:
        """From `vendor.key=value` items, comma-separated or one per string."""
        items = [specs] if isinstance(specs, str) else list(specs)
        values: dict[str, str] = {}
        for item in items:
            for part in item.split(","):
                part = part.strip()
                if not part:
                    continue
                name, sep, value = part.partition("=")
                if not sep or not value.strip():
                    raise ReadingError(f"a reading is written vendor.key=value, not {part!r}")
                values[name.strip()] = value.strip()
        return cls(values)

    def value(self, vendor: str, key: str) -> str:
        name = f"{vendor}.{key}"
        if name not in _BY_NAME:
            raise ReadingError(f"unknown reading {name!r}")
        return self._values.get(name, _BY_NAME[name].default)

    def number(self, vendor: str, key: str) -> float:
        return float(self.value(vendor, key))

    def chosen(self) -> dict[str, str]:
        """The readings set away from their defaults (name -> value)."""
        return {k: v for k, v in self._values.items() if v != _BY_NAME[k].default}

    def __repr__(self) -> str:
        chosen = ",".join(f"{k}={v}" for k, v in sorted(self.chosen().items()))
        return f"Readings({chosen or 'defaults'})"


def all_single() -> Iterator[tuple[str, Readings]]:
    """The defaults, then every non-default value of every reading alone (for tests)."""
    yield "defaults", Readings()
    for reading in READINGS:
        for value in reading.alternatives():
            yield f"{reading.name}={value}", Readings({reading.name: value})
