"""Unit parsing and formatting: what people write -> int energy, sun, seconds, milli-sun."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from policies.units import (
    Address,
    Energy,
    Sun,
    format_duration,
    format_energy,
    format_sun,
    format_unit_price,
    parse_duration,
    parse_energy,
    parse_sun,
    parse_unit_price,
    validate_address,
)

GOOD_ADDRESS = "TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw"  # from the vendor docs' examples


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (65000, 65_000),
        ("65000", 65_000),
        ("65k", 65_000),
        ("65K", 65_000),
        ("1.5M", 1_500_000),
        ("131k", 131_000),
        (" 2M ", 2_000_000),
        ("1.234k", 1_234),
        ("0", 0),
    ],
)
def test_parse_energy(text: object, expected: int) -> None:
    assert parse_energy(text) == expected


@pytest.mark.parametrize(
    "bad", ["", "65 kilo", "1.2345k", "-5", -5, True, None, 65.5, [65], "65kk", "x" * 500]
)
def test_parse_energy_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="energy"):
        parse_energy(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.5 TRX", 12_500_000),
        ("3000000 sun", 3_000_000),
        ("3 TRX", 3_000_000),
        ("0.000001 TRX", 1),
        ("1trx", 1_000_000),
        ("7 SUN", 7),
    ],
)
def test_parse_sun(text: str, expected: int) -> None:
    assert parse_sun(text) == expected


@pytest.mark.parametrize("bad", [5, "5", "0.0000001 TRX", "1.5 sun", "12.5 USDT", "-1 TRX", 2.5])
def test_parse_sun_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match=r"TRX|sun"):
        parse_sun(bad)


def test_bare_number_is_called_ambiguous() -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        parse_sun(300)
    with pytest.raises(ValueError, match="ambiguous"):
        parse_duration("60")
    with pytest.raises(ValueError, match="ambiguous"):
        parse_unit_price(95)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", 90),
        ("10m", 600),
        ("10min", 600),
        ("1h", 3_600),
        ("1d", 86_400),
        ("30d", 2_592_000),
        ("1.5h", 5_400),
        ("1w", 604_800),
    ],
)
def test_parse_duration(text: str, expected: int) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["1.5s", "1y", "h", "", "-1h", 3600])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|whole number of seconds"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("95 sun/energy", 95_000),
        ("95.5 sun/energy", 95_500),
        ("0.001 sun/energy", 1),
        ("0.000095 TRX/energy", 95_000),
        ("95 sun / energy", 95_000),
    ],
)
def test_parse_unit_price(text: str, expected: int) -> None:
    assert parse_unit_price(text) == expected


@pytest.mark.parametrize("bad", ["95", "95 sun", "0.0001 sun/energy", "95 sun/bandwidth"])
def test_parse_unit_price_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="energy"):
        parse_unit_price(bad)


def test_address_accepts_a_valid_base58check_address() -> None:
    assert validate_address(GOOD_ADDRESS) == GOOD_ADDRESS


@pytest.mark.parametrize("position", [1, 5, 17, 33])
def test_one_character_typo_in_an_address_is_caught(position: int) -> None:
    chars = list(GOOD_ADDRESS)
    chars[position] = "a" if chars[position] != "a" else "b"
    with pytest.raises(ValueError, match="invalid TRON address"):
        validate_address("".join(chars))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "T",
        GOOD_ADDRESS[:-1],
        GOOD_ADDRESS + "x",
        "41" + "0" * 40,
        "0x" + "0" * 40,
        "TExWKszFWYTKZH8LYiovAPKzS3L9MLZ40w",
        12345,
        None,
    ],
)
def test_address_rejects_other_forms(bad: object) -> None:
    with pytest.raises(ValueError, match="TRON address"):
        validate_address(bad)


def test_formatting() -> None:
    assert format_sun(3_000_000) == "3 TRX"
    assert format_sun(12_500_000) == "12.5 TRX"
    assert format_sun(420) == "420 sun"
    assert format_energy(65_000) == "65k"
    assert format_energy(1_500_000) == "1.5M"
    assert format_energy(65_432) == "65432"
    assert format_duration(3_600) == "1h"
    assert format_duration(5_400) == "90m"
    assert format_duration(2_592_000) == "30d"
    assert format_duration(90) == "90s"
    assert format_unit_price(95_500) == "95.5 sun/energy"


@given(st.integers(min_value=0, max_value=10**15))
def test_sun_round_trips(value: int) -> None:
    assert parse_sun(format_sun(value)) == value


@given(st.integers(min_value=0, max_value=10**12))
def test_energy_round_trips(value: int) -> None:
    assert parse_energy(format_energy(value)) == value


@given(st.integers(min_value=0, max_value=10**9))
def test_duration_round_trips(value: int) -> None:
    assert parse_duration(format_duration(value)) == value


@given(st.integers(min_value=0, max_value=10**12))
def test_unit_price_round_trips(value: int) -> None:
    assert parse_unit_price(format_unit_price(value)) == value


@given(st.one_of(st.text(max_size=80), st.integers(), st.floats(), st.booleans(), st.none()))
def test_any_input_gives_a_value_or_value_error(value: object) -> None:
    for parse in (parse_energy, parse_sun, parse_duration, parse_unit_price, validate_address):
        try:
            result = parse(value)
        except ValueError:
            continue
        assert isinstance(result, (int, str))


class _Amounts(BaseModel):
    energy: Energy
    money: Sun
    address: Address


def test_annotated_types_parse_and_require_positive_amounts() -> None:
    model = _Amounts(energy="65k", money="1 TRX", address=GOOD_ADDRESS)
    assert (model.energy, model.money) == (65_000, 1_000_000)
    with pytest.raises(ValidationError, match="greater than zero"):
        _Amounts(energy=0, money="1 TRX", address=GOOD_ADDRESS)


@pytest.mark.parametrize(
    ("parse", "bad"),
    [
        (parse_energy, "\u0663k"),  # ARABIC-INDIC DIGIT THREE: `\d` and Decimal accept it
        (parse_energy, "\uff16\uff15k"),  # fullwidth 65
        (parse_energy, "0x10"),
        (parse_energy, "1:30"),
        (parse_energy, "1_000"),
        (parse_energy, "0o17"),
        (parse_sun, "\u0665 TRX"),
        (parse_sun, "0x10 TRX"),
        (parse_duration, "\u0661\u0660m"),
        (parse_duration, "1:30h"),
        (parse_unit_price, "\u0669\u0665 sun/energy"),
    ],
)
def test_only_plain_ascii_decimals_are_read(parse: Any, bad: str) -> None:
    with pytest.raises(ValueError, match=r"ASCII digits|plain decimal"):
        parse(bad)
