"""Fuzzing the policy language: unit parsers, the loader and `energyctl validate`.

Properties:

- every `policies.units` parser returns a value or raises `ValueError` with a message,
  whatever it is given (text, numbers, floats, None, containers);
- `policies.loading.load` never raises: arbitrary bytes, and documents built from a grammar
  of the real ones (Provider, EnergyPolicy, EngineConfig) then mutated (wrong types, missing
  and extra keys, huge numbers, unicode, deep nesting, YAML tags and anchors) give a
  `LoadResult` whose diagnostics name the file, with 1-based line:column where they carry one;
- `energyctl validate` on the same files exits 0 or 1 and never prints a traceback.

Examples are bounded by the `ci` profile (tests/fuzz/profiles.py).
"""

from __future__ import annotations

import copy
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from engine.act.validating import ENGINE_CHECKS
from engine.cli import main
from policies import units
from policies.loading import LoadResult, SecretMode, load
from tests.fuzz.profiles import fuzz
from tests.policies.conftest import ADDRESS_A, ADDRESS_B

# --------------------------------------------------------------------------- unit parsers

PARSERS = [
    units.parse_energy,
    units.parse_sun,
    units.parse_duration,
    units.parse_unit_price,
    units.validate_address,
]

_UNIT_WORDS = ["k", "K", "M", "energy", "TRX", "trx", "sun", "SUN", "s", "m", "min", "h", "d", "w"]
unit_text = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda sign, number, space, unit, tail: f"{sign}{number}{space}{unit}{tail}",
        st.sampled_from(["", "-", "+", " "]),
        st.one_of(
            st.integers(min_value=0, max_value=10**40).map(str),
            st.decimals(allow_nan=True, allow_infinity=True).map(str),
            st.floats().map(repr),
            st.text(alphabet="0123456789.eE_٣", max_size=30),
        ),
        st.sampled_from(["", " ", "\t", "\n", "\u00a0"]),
        st.sampled_from(_UNIT_WORDS),
        st.sampled_from(["", "/energy", " / energy", "/ENERGY", "x", "\x00"]),
    ),
    st.text(alphabet="123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", min_size=33,
            max_size=35).map(lambda s: "T" + s),
)  # fmt: skip
unit_value = st.one_of(
    unit_text,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.decimals(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.binary(max_size=10),
)


@pytest.mark.parametrize("parse", PARSERS, ids=lambda p: p.__name__)
@fuzz(300)
@given(value=unit_value)
@example(value="9" * 64)
@example(value="1e400 sun")
@example(value="NaN")
@example(value="٣k")  # a non-ASCII digit: \d matches it in str patterns
def test_unit_parsers_give_a_value_or_a_value_error(parse: Any, value: Any) -> None:
    try:
        result = parse(value)
    except ValueError as exc:
        assert str(exc), "a ValueError without a message"
        return
    if parse is units.validate_address:
        assert isinstance(result, str) and result == value
    else:
        assert isinstance(result, int) and not isinstance(result, bool) and result >= 0


@fuzz(200)
@given(number=st.integers(min_value=0, max_value=10**15))
def test_formatting_round_trips_through_the_parsers(number: int) -> None:
    assert units.parse_energy(units.format_energy(number)) == number
    assert units.parse_sun(units.format_sun(number)) == number
    if number:
        assert units.parse_duration(units.format_duration(number)) == number
        assert units.parse_unit_price(units.format_unit_price(number)) == number


# --------------------------------------------------------------------------- documents

PROVIDER_SPECS: dict[str, dict[str, Any]] = {
    "itrx": {"type": "itrx", "apiKey": {"fromEnv": "K1"}, "apiSecret": {"fromEnv": "S1"}},
    "mefree": {"type": "mefree", "apiKey": {"fromEnv": "K2"}, "apiSecret": {"fromFile": "s.key"}},
    "eopen": {"type": "eopen", "apiKey": {"fromEnv": "K3"}, "baseUrl": "http://127.0.0.1:1/api"},
    "tronsave": {"type": "tronsave", "apiKey": {"fromEnv": "K4"}, "network": "nile"},
}


def _provider(vendor: str) -> dict[str, Any]:
    return {
        "apiVersion": "energyctl/v1",
        "kind": "Provider",
        "metadata": {"name": vendor},
        "spec": copy.deepcopy(PROVIDER_SPECS[vendor]),
    }


def _policy(name: str, address: str, providers: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "energyctl/v1",
        "kind": "EnergyPolicy",
        "metadata": {"name": name, "labels": {"team": "payments"}},
        "spec": {
            "addresses": [address],
            "threshold": "65k",
            "topUp": {"amount": "131k", "duration": "1h"},
            "providers": providers,
            "maxPrice": "95 sun/energy",
            "budget": {"perDay": "300 TRX", "perMonth": "5000 TRX"},
            "exclusive": False,
            "cooldown": "10m",
            "maxOpenOrders": 1,
        },
    }


def _engine() -> dict[str, Any]:
    return {
        "apiVersion": "energyctl/v1",
        "kind": "EngineConfig",
        "metadata": {"name": "engine"},
        "spec": {
            "node": {"url": "http://127.0.0.1:1", "apiKey": {"fromEnv": "NODE_KEY"}},
            "observation": {"mode": "poll", "interval": "30s"},
            "store": {"url": "sqlite:///energyctl.db"},
            "http": {"listen": "127.0.0.1:8080", "apiToken": {"fromEnv": "TOKEN"}},
            "maxActionsPerPass": 10,
        },
    }


def _base_set() -> list[dict[str, Any]]:
    return [
        _provider("itrx"),
        _provider("tronsave"),
        _policy("payouts", ADDRESS_A, ["itrx", "tronsave"]),
        _policy("sweep", ADDRESS_B, ["tronsave"]),
        _engine(),
    ]


scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(["65k", "1h", "300 TRX", "95 sun/energy", ADDRESS_A, "itrx", "energyctl/v1",
                     "Provider", "EnergyPolicy", "EngineConfig", "fromEnv", "\u202e", "ÿ" * 30]),
)  # fmt: skip
junk = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_sets(draw: st.DrawFn) -> list[Any]:
    """The base policy set with a few mutations applied at drawn places."""
    docs: list[Any] = _base_set()
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        index = draw(st.integers(min_value=0, max_value=len(docs) - 1))
        paths = _paths(docs[index])
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "extra", "nest", "swap_doc"]))
        if action == "swap_doc" or not path:
            docs[index] = draw(junk)
            continue
        parent: Any = docs[index]
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        if action == "replace":
            parent[last] = draw(junk)
        elif action == "delete":
            del parent[last]
        elif action == "extra" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=15))] = draw(junk)
        elif action == "nest":
            depth = draw(st.integers(min_value=1, max_value=60))
            value: Any = parent[last]
            for _ in range(depth):
                value = [value] if draw(st.booleans()) else {"x": value}
            parent[last] = value
    return docs


def _dump(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


text_edits = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=1),
        st.sampled_from(["\t", ": ", "- ", "&a ", "*a ", "<<: *a\n", "!!python/object:os.system ",
                         "{", "[", "'", '"', "---\n", "\n  ", "#", "\x00", "\ufeff", "%YAML 1.1\n",
                         "!!binary ", "? ", "|", "\r"]),
    ),
    max_size=4,
)  # fmt: skip


def _edit(text: str, edits: list[tuple[float, str]]) -> str:
    for where, insert in edits:
        at = int(where * len(text))
        text = text[:at] + insert + text[at:]
    return text


def _check_result(result: LoadResult, file: Path) -> None:
    assert isinstance(result, LoadResult)
    assert result.ok == (result.policy_set is not None)
    assert result.ok or result.errors, "invalid without an error"
    for diagnostic in result.diagnostics:
        assert diagnostic.message
        assert diagnostic.file is not None and diagnostic.file.startswith(str(file.parent))
        if diagnostic.line is not None:
            assert diagnostic.line >= 1 and (diagnostic.column or 1) >= 1
        assert str(diagnostic).startswith(diagnostic.file)
    result.to_dict()  # JSON-ready report
    str(result.diagnostics)


def _load(tmp: Path, content: bytes, name: str = "set.yaml") -> tuple[LoadResult, Path]:
    file = tmp / name
    file.write_bytes(content)
    (tmp / "s.key").write_text("secret\n")
    env = {"K1": "k", "S1": "s", "K4": "k", "NODE_KEY": "n", "TOKEN": "t"}
    result = load(file, secrets=SecretMode.REQUIRED, checks=ENGINE_CHECKS, env=env)
    return result, file


def test_the_base_set_is_valid(tmp_path: Path) -> None:
    result, _ = _load(tmp_path, _dump(_base_set()).encode())
    assert result.ok, result.diagnostics


@fuzz(150)
@given(docs=mutated_sets(), edits=text_edits)
def test_mutated_documents_give_diagnostics_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, docs: list[Any], edits: list[tuple[float, str]]
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    text = _edit(_dump(docs), edits)
    result, file = _load(tmp, text.encode("utf-8", "surrogatepass"))
    _check_result(result, file)


@fuzz(150)
@given(content=st.one_of(
    st.binary(max_size=2_000),
    st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(alphabet=string.printable, max_size=800).map(str.encode),
    st.integers(min_value=1, max_value=200).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=200).map(lambda n: b"a: " * n + b"1"),
    st.integers(min_value=1, max_value=5_000).map(lambda n: b"x: " + b"9" * n),
))  # fmt: skip
@example(content=b"\xff\xfe" + "kind: Provider".encode("utf-16-le"))
@example(content=b"a: &a [*a]")
@example(content=b"a: &a [1]\nb: [*a, *a, *a]\n" * 40)
@example(content=b"x: !!float 1e99999\n")
@example(content=b"x: 0b" + b"1" * 20_000 + b"\n")
def test_arbitrary_bytes_give_diagnostics_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    result, file = _load(tmp, content)
    _check_result(result, file)
    assert not result.ok or content.strip()


def test_a_huge_file_is_refused_with_a_diagnostic(tmp_path: Path) -> None:
    result, file = _load(tmp_path, b"# " + b"x" * (2 * 1024 * 1024))
    _check_result(result, file)
    assert not result.ok and result.errors[0].code == "too-large"


# --------------------------------------------------------------------------- the CLI


@fuzz(40)
@given(docs=mutated_sets(), edits=text_edits, output=st.sampled_from(["text", "json"]))
def test_validate_exits_0_or_1_without_a_traceback(
    tmp_path_factory: pytest.TempPathFactory,
    docs: list[Any],
    edits: list[tuple[float, str]],
    output: str,
) -> None:
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "set.yaml").write_bytes(_edit(_dump(docs), edits).encode("utf-8", "surrogatepass"))
    result = CliRunner().invoke(main, ["validate", "-o", output, str(tmp)])
    assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
