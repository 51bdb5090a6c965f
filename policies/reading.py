"""Reading policy files: bytes -> YAML documents whose every key and value has a position.

A hardened reader on top of PyYAML's safe composer (the node API): it refuses files larger
than a limit, binary and non-UTF-8 files, duplicate keys in a mapping (YAML parsers keep the
last one silently), merge keys, more than a few aliases and documents that expand too far
("billion laughs"), and it explains tabs used for indentation. It never raises for bad
input: problems come back as `Diagnostic`s with 1-based `file:line:column`.

Neighbours: `policies/loading.py` calls `read_file` and turns each `RawDocument` into a
model, using `RawDocument.locate` to map a validation error's path to a position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from policies.diagnostics import Diagnostic, Location

MAX_FILE_BYTES = 1024 * 1024
"""Largest policy file read (1 MiB); larger files are refused unread."""
MAX_ALIASES = 32
"""Most YAML aliases (`*name`) per file."""
MAX_NODES = 200_000
"""Most values per file after alias expansion."""
MAX_DEPTH = 40
"""Deepest nesting of mappings and sequences."""

PathKey = tuple[str | int, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"
#: the only integers read as numbers; YAML 1.1's hex, octal, binary, sexagesimal and
#: underscored forms are kept as the text written (a unit field then refuses it)
_DECIMAL_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp", "merge")
)


class _ReadError(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None = None, code: str = "yaml") -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.code = code


@dataclass
class RawDocument:
    """One YAML document: plain data plus the position of every value and key."""

    file: str
    index: int
    data: Any
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> Location:
        """The position of the value at `path` (or of its key), else of its nearest parent.

        Elements of `path` that are not in the document (e.g. a union's tag in a pydantic
        error location) are skipped.
        """
        found: PathKey = ()
        for element in path:
            candidate = (*found, element)
            if candidate in self.values:
                found = candidate
        table = self.keys if key and found in self.keys else self.values
        line, column = table.get(found, (1, 1))
        return Location(self.file, line, column)


class _Reader:
    """Converts composed nodes to plain data, enforcing the limits."""

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.nodes = 0
        self.diagnostics: list[Diagnostic] = []

    def document(self, node: Node, index: int) -> RawDocument:
        doc = RawDocument(self.file, index, None)
        doc.data = self._value(node, (), 0, doc)
        return doc

    def _at(self, mark: yaml.Mark) -> Location:
        return Location(self.file, mark.line + 1, mark.column + 1)

    def _value(self, node: Node, path: PathKey, depth: int, doc: RawDocument) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _ReadError(
                f"too many values (more than {MAX_NODES:,} after alias expansion); "
                "aliases that expand this far are refused ('billion laughs')",
                node.start_mark,
                "yaml-too-large",
            )
        if depth > MAX_DEPTH:
            raise _ReadError(
                f"nested more than {MAX_DEPTH} levels deep", node.start_mark, "yaml-too-deep"
            )
        doc.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if node.tag not in _PLAIN_TAGS:
            self.diagnostics.append(
                Diagnostic.error(
                    self._at(node.start_mark),
                    f"unsupported YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')!r}: "
                    "policy files use plain YAML (strings, numbers, booleans, lists, maps)",
                    "yaml-tag",
                )
            )
            return None
        if isinstance(node, ScalarNode):
            if node.tag == _INT_TAG and not _DECIMAL_INT.match(node.value):
                return node.value  # 0x10, 0o17, 017, 0b1, 1:30, 1_000: the text, for the checks
            try:
                return self.loader.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError) as exc:
                message = getattr(exc, "problem", None) or str(exc)
                self.diagnostics.append(
                    Diagnostic.error(self._at(node.start_mark), f"invalid value: {message}", "yaml")
                )
                return None
        if isinstance(node, SequenceNode):
            return [
                self._value(item, (*path, i), depth + 1, doc) for i, item in enumerate(node.value)
            ]
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth, doc)
        raise _ReadError("unsupported YAML node", node.start_mark)  # pragma: no cover

    def _mapping(self, node: MappingNode, path: PathKey, depth: int, doc: RawDocument) -> Any:
        result: dict[str, Any] = {}
        first: dict[str, yaml.Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.diagnostics.append(
                    Diagnostic.error(
                        self._at(key_node.start_mark),
                        "merge keys (<<) are not supported: write the keys out",
                        "yaml-merge-key",
                    )
                )
                continue
            if not isinstance(key_node, ScalarNode):
                self.diagnostics.append(
                    Diagnostic.error(
                        self._at(key_node.start_mark),
                        "a mapping key must be a plain string, not a list or mapping",
                        "yaml-key",
                    )
                )
                continue
            key = str(key_node.value)
            if key in first:
                mark = first[key]
                self.diagnostics.append(
                    Diagnostic.error(
                        self._at(key_node.start_mark),
                        f"duplicate key {key!r} (first at line {mark.line + 1}, column "
                        f"{mark.column + 1}): YAML would silently keep only the last one; "
                        "remove one of them",
                        "yaml-duplicate-key",
                    )
                )
                continue
            first[key] = key_node.start_mark
            doc.keys[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self._value(value_node, (*path, key), depth + 1, doc)
        return result


class _Loader(yaml.SafeLoader):
    """Safe loader that counts aliases while composing."""

    aliases = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _ReadError(
                    f"more than {MAX_ALIASES} aliases (*name) in one file; aliases are "
                    "limited to protect against 'billion laughs' documents",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                    "yaml-aliases",
                )
        return super().compose_node(parent, index)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _tabs(file: str, text: str) -> list[Diagnostic]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = re.match(r"^[ \t]*", line)
        if indent and "\t" in indent.group(0):
            column = indent.group(0).index("\t") + 1
            found.append(
                Diagnostic.error(
                    Location(file, number, column),
                    "tab character in indentation: YAML indentation must use spaces",
                    "yaml-tab",
                )
            )
    return found[:20]


def decode(file: str, raw: bytes) -> tuple[str | None, list[Diagnostic]]:
    """Bytes -> text, or a diagnostic for binary or non-UTF-8 content."""
    if b"\x00" in raw:
        return None, [
            Diagnostic.error(
                Location(file),
                "binary file (it contains NUL bytes): policy files are UTF-8 YAML text",
                "binary",
            )
        ]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Diagnostic.error(
                Location(file, line, column),
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x}): policy files are UTF-8 YAML",
                "encoding",
            )
        ]
    return text.removeprefix("\ufeff"), []


def read_file(
    path: Path, display: str, max_bytes: int = MAX_FILE_BYTES
) -> tuple[list[RawDocument], list[Diagnostic]]:
    """Read every document of one file. On any YAML-level error, no document is returned."""
    where = Location(display)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return [], [
                Diagnostic.error(
                    where,
                    f"file is {size:,} bytes, more than the {max_bytes:,}-byte limit for a "
                    "policy file: split it into several files",
                    "too-large",
                )
            ]
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        return [], [Diagnostic.error(where, f"cannot read file: {exc.strerror or exc}", "io")]
    if len(raw) > max_bytes:
        return [], [
            Diagnostic.error(where, f"file is larger than {max_bytes:,} bytes", "too-large")
        ]
    text, problems = decode(display, raw)
    if text is None:
        return [], problems
    return read_text(text, display)


def read_text(text: str, file: str) -> tuple[list[RawDocument], list[Diagnostic]]:
    """Parse YAML text into documents; empty documents (a lone `---`) are skipped."""
    documents: list[RawDocument] = []
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        return [], [
            Diagnostic.error(
                Location(file, line, column),
                f"character U+{exc.character:04X} is not allowed in YAML text",
                "yaml",
            )
        ]
    reader = _Reader(file, loader)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is not None and not (node.tag.endswith(":null") and node.value in ("", "~")):
                documents.append(reader.document(node, index))
            index += 1
    except _ReadError as exc:
        location = reader._at(exc.mark) if exc.mark else Location(file)
        return [], [Diagnostic.error(location, exc.message, exc.code)]
    except yaml.MarkedYAMLError as exc:
        return [], _syntax_error(file, text, exc)
    except RecursionError:
        return [], [Diagnostic.error(Location(file), "YAML nested far too deep", "yaml-too-deep")]
    finally:
        loader.dispose()
    if reader.diagnostics:
        return [], reader.diagnostics
    if not documents:
        return [], [
            Diagnostic.error(
                Location(file, 1, 1),
                "empty file: expected at least one document with apiVersion, kind, metadata "
                "and spec",
                "empty",
            )
        ]
    return documents, []


def _syntax_error(file: str, text: str, exc: yaml.MarkedYAMLError) -> list[Diagnostic]:
    tabs = _tabs(file, text)
    if tabs:
        return tabs
    mark = exc.problem_mark or exc.context_mark
    location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem:
        problem = "tab character where YAML does not allow one: use spaces"
    context = f" ({exc.context})" if exc.context and "\\t" not in problem else ""
    return [Diagnostic.error(location, f"invalid YAML: {problem}{context}", "yaml")]
