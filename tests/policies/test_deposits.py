"""DepositPolicy documents and address files: validation with file:line:column."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from policies.addresses import (
    AddressSet,
    decode_base58check,
    encode_base58check,
    read_address_file,
)
from policies.loading import SecretMode, load
from policies.units import validate_address

GOOD = "TKYPNyrXtuDAZSjAPmu23evp4TB75tWiHj"
HOT = "TG5DpxK5iEC2jQMjPxf9F3AdEe3TWaAd3c"

POLICY = """\
apiVersion: energyctl/v1
kind: Provider
metadata: {{name: sweep-eopen}}
spec: {{type: eopen, apiKey: {{fromEnv: EOPEN}}}}
---
apiVersion: energyctl/v1
kind: DepositPolicy
metadata: {{name: sweep}}
spec:
  addressesFrom: {{file: {file}}}
  sweepTo: {hot}
  providers: [{provider}]
  maxPrice: 90 sun/energy
  budget: {{perDay: {budget}}}
"""


def write(tmp_path: Path, lines: str, *, provider: str = "sweep-eopen", budget: str = "1000 TRX"):
    (tmp_path / "addresses.txt").write_text(lines)
    (tmp_path / "p.yaml").write_text(
        POLICY.format(file="addresses.txt", hot=HOT, provider=provider, budget=budget)
    )
    return load(tmp_path / "p.yaml", secrets=SecretMode.OPTIONAL, env={})


def test_an_address_file_loads_into_the_policy_set(tmp_path: Path) -> None:
    result = write(tmp_path, f"# deposit addresses\n{GOOD}\n\n  {HOT}  # the second\n{GOOD}\n")
    assert result.policy_set is not None, [str(d) for d in result.diagnostics]
    (policy,) = result.policy_set.deposit_policies.values()
    assert policy.spec.tokens == ["TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"]
    read = result.policy_set.address_files["sweep"]
    assert len(read.addresses) == 2 and read.duplicates == 1
    assert GOOD in read.addresses and HOT in read.addresses


def test_a_bad_line_is_reported_at_its_line_and_column(tmp_path: Path) -> None:
    bad = GOOD[:-1] + ("j" if GOOD[-1] != "j" else "k")
    result = write(tmp_path, f"{GOOD}\n\n   {bad}\n0x41abc\n")
    assert result.policy_set is None
    where = [(d.file, d.line, d.column) for d in result.errors]
    file = str(tmp_path / "addresses.txt")
    assert where == [(file, 3, 4), (file, 4, 1)]
    assert "base58check" in result.errors[0].message


def test_unknown_provider_and_a_budget_below_one_sweep(tmp_path: Path) -> None:
    result = write(tmp_path, f"{GOOD}\n", provider="sweep-eopn", budget="1 TRX")
    codes = sorted(d.code for d in result.errors)
    assert codes == ["budget-below-one-sweep", "unknown-provider"]
    assert "did you mean 'sweep-eopen'" in str(result.errors)


def test_a_postgres_source_refuses_a_password_in_the_url(tmp_path: Path) -> None:
    text = POLICY.format(file="x", hot=HOT, provider="sweep-eopen", budget="1000 TRX").replace(
        "addressesFrom: {file: x}",
        "addressesFrom: {postgres: {url: 'postgresql://u:pw@db/x', query: 'SELECT a FROM t'}}",
    )
    (tmp_path / "p.yaml").write_text(text)
    result = load(tmp_path / "p.yaml", secrets=SecretMode.OPTIONAL, env={})
    assert result.policy_set is None
    assert any("contains a password" in d.message for d in result.errors)
    assert "pw" not in " ".join(d.message for d in result.errors)


@given(st.binary(min_size=20, max_size=20))
def test_the_fast_decoder_agrees_with_the_reference(body: bytes) -> None:
    text = encode_base58check(body)
    assert validate_address(text) == text
    assert decode_base58check(text) == body


def test_the_fast_decoder_refuses_what_the_reference_refuses() -> None:
    rng = random.Random(5)
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    for _ in range(2000):
        text = list(encode_base58check(rng.randbytes(20)))
        text[rng.randrange(1, 34)] = rng.choice(alphabet)
        candidate = "".join(text)
        try:
            validate_address(candidate)
            valid = True
        except ValueError:
            valid = False
        assert (decode_base58check(candidate) is not None) == valid, candidate
    for junk in ["", "T", GOOD + "1", GOOD.lower(), "0" + GOOD[1:], "T" + "é" * 33]:
        assert decode_base58check(junk) is None


def test_address_set_is_compact_and_round_trips() -> None:
    found = AddressSet.of([GOOD, HOT])
    assert sorted(found) == sorted([GOOD, HOT]) and len(found) == 2
    assert not found.add(GOOD) and found.discard(HOT) and HOT not in found


def test_read_address_file_reports_an_unreadable_file(tmp_path: Path) -> None:
    read = read_address_file(tmp_path / "missing.txt")
    assert not read.ok and "cannot be read" in read.problems[0].message
