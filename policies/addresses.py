"""Address sets that are data: compact sets of TRON addresses, and address files.

A deposit policy may watch hundreds of thousands to millions of addresses. They are kept
as the 20 bytes that follow the `0x41` prefix of a TRON address (`AddressSet`, a set of
`bytes`, about 90 bytes an address with the set's table), never as one object with heavy
fields per address. The same 20 bytes are what a TRC-20 `Transfer` event carries in its
topics, so a block's logs are checked against the set without any base58 conversion.

`decode_base58check` is a validated fast path: a base58 string is turned into its 25 bytes
with one `bytes.translate` and one integer loop, and the double-SHA-256 checksum of the
first 21 bytes is compared with the last four (the base58check rule TRON shares with
Bitcoin: https://developers.tron.network/docs/account#account-address-format). It gives the
same verdict as `policies.units.validate_address` (a test compares them) at about a third
of its cost, which makes a million-line file load in seconds.

`read_address_file(path)` reads one address per line (blank lines and `#` comments
skipped) and reports each bad line as a `Diagnostic` at `file:line:column`.

Neighbours: `policies/deposits.py` (the DepositPolicy's `addressesFrom.file`), the engine's
deposit watcher (`engine/observe/deposits.py`), which holds the live set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from policies.diagnostics import Diagnostic, Location

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_DIGITS = bytes.maketrans(ALPHABET.encode(), bytes(range(58)))
_NOT_BASE58 = bytes(set(range(256)) - set(ALPHABET.encode()))
_PREFIX = 0x41
MAX_ERRORS = 20
"""An address file's problems reported at most (the rest are counted)."""


def decode_base58check(text: str) -> bytes | None:
    """The 20 address bytes after `0x41` of a base58check TRON address, or None when
    `text` is not one (wrong length, a character outside base58, a bad checksum)."""
    if len(text) != 34 or text[0] != "T" or not text.isascii():
        return None
    raw = text.encode()
    if raw.translate(None, _NOT_BASE58) != raw:
        return None
    number = 0
    for digit in raw.translate(_DIGITS):
        number = number * 58 + digit
    if number >> 200:
        return None
    full = number.to_bytes(25, "big")
    body = full[:21]
    sha = hashlib.sha256
    if body[0] != _PREFIX or sha(sha(body).digest()).digest()[:4] != full[21:]:
        return None
    return body[1:]


def encode_base58check(body: bytes) -> str:
    """The base58check form (`T...`) of 20 address bytes (without the 0x41 prefix)."""
    full = bytes([_PREFIX]) + body
    full += hashlib.sha256(hashlib.sha256(full).digest()).digest()[:4]
    number = int.from_bytes(full, "big")
    out = []
    while number:
        number, rest = divmod(number, 58)
        out.append(ALPHABET[rest])
    return "".join(reversed(out))


def body_of_hex(address: str) -> bytes | None:
    """20 address bytes from `41...` hex (42 digits) or a 32-byte log topic (64 digits)."""
    try:
        if len(address) == 42 and address[:2] == "41":
            return bytes.fromhex(address[2:])
        if len(address) == 64:
            return bytes.fromhex(address[24:])
        if len(address) == 40:
            return bytes.fromhex(address)
    except ValueError:
        return None
    return None


class AddressSet:
    """A compact, mutable set of TRON addresses (20-byte bodies; base58 at the edges).

    `in` accepts a base58 address or the 20 bytes; iteration yields base58 strings (made on
    the fly: the set itself never holds them)."""

    __slots__ = ("_bodies",)

    def __init__(self, bodies: Iterable[bytes] = ()) -> None:
        self._bodies: set[bytes] = set(bodies)

    @classmethod
    def of(cls, addresses: Iterable[str]) -> AddressSet:
        """From base58 addresses already validated (ValueError on one that is not)."""
        found = cls()
        for address in addresses:
            found.add(address)
        return found

    def add(self, address: str | bytes) -> bool:
        """Add one; True when it was not there yet."""
        body = self._body(address)
        before = len(self._bodies)
        self._bodies.add(body)
        return len(self._bodies) != before

    def discard(self, address: str | bytes) -> bool:
        """Remove one; True when it was there."""
        body = self._body(address)
        if body in self._bodies:
            self._bodies.discard(body)
            return True
        return False

    def has_body(self, body: bytes) -> bool:
        return body in self._bodies

    def __contains__(self, address: object) -> bool:
        if isinstance(address, bytes):
            return address in self._bodies
        if isinstance(address, str):
            body = decode_base58check(address)
            return body is not None and body in self._bodies
        return False

    def __len__(self) -> int:
        return len(self._bodies)

    def __iter__(self) -> Iterator[str]:
        return (encode_base58check(body) for body in self._bodies)

    def bodies(self) -> frozenset[bytes]:
        return frozenset(self._bodies)

    def union(self, other: AddressSet) -> AddressSet:
        return AddressSet(self._bodies | other._bodies)

    @staticmethod
    def _body(address: str | bytes) -> bytes:
        if isinstance(address, bytes):
            if len(address) != 20:
                raise ValueError(f"an address body is 20 bytes, got {len(address)}")
            return address
        body = decode_base58check(address)
        if body is None:
            raise ValueError(f"invalid TRON address {address[:40]!r}")
        return body

    def __repr__(self) -> str:
        return f"AddressSet({len(self)} addresses)"


@dataclass
class AddressFile:
    """What `read_address_file` found: the set and each bad line (at most `MAX_ERRORS`)."""

    path: str
    addresses: AddressSet
    problems: list[Diagnostic] = field(default_factory=list)
    bad_lines: int = 0
    duplicates: int = 0

    @property
    def ok(self) -> bool:
        return self.bad_lines == 0


def read_address_file(path: str | Path, display: str | None = None) -> AddressFile:
    """One TRON address per line (surrounding spaces, blank lines and `# comments` ignored).

    Never raises for bad content: each bad line is a Diagnostic at its line and column
    (the first `MAX_ERRORS`; the count of the rest in a last one); an unreadable file is
    one Diagnostic."""
    shown = display or str(path)
    found = AddressFile(shown, AddressSet())
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        found.problems.append(
            Diagnostic.error(
                Location(shown),
                f"address file cannot be read ({exc.strerror or exc})",
                "address-file",
            )
        )
        found.bad_lines = 1
        return found
    bodies = found.addresses._bodies
    for number, raw_line in enumerate(data.split(b"\n"), start=1):
        line = raw_line.split(b"#", 1)[0].strip()
        if not line:
            continue
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        body = decode_base58check(text) if text else None
        if body is None:
            found.bad_lines += 1
            if found.bad_lines <= MAX_ERRORS:
                column = raw_line.index(line[:1]) + 1
                found.problems.append(
                    Diagnostic.error(
                        Location(shown, number, column),
                        f"invalid TRON address {line[:40].decode('ascii', 'replace')!r}: "
                        "expected 34 base58 characters starting with T, with a valid "
                        "base58check checksum",
                        "invalid-address",
                    )
                )
            continue
        before = len(bodies)
        bodies.add(body)
        if len(bodies) == before:
            found.duplicates += 1
    if found.bad_lines > MAX_ERRORS:
        found.problems.append(
            Diagnostic.error(
                Location(shown),
                f"{found.bad_lines - MAX_ERRORS} more invalid lines not shown "
                f"({found.bad_lines} in all)",
                "invalid-address",
            )
        )
    return found


__all__ = [
    "AddressFile",
    "AddressSet",
    "decode_base58check",
    "encode_base58check",
    "read_address_file",
]
