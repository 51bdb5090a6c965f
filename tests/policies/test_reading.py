"""The hardened YAML reader: positions, limits, and never an exception for bad input."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.loading import SecretMode, load
from policies.reading import MAX_ALIASES, decode, read_text


def test_positions_of_keys_and_values() -> None:
    docs, problems = read_text("a: 1\nb:\n  - x\n  - {c: 2}\n---\nd: e\n", "f.yaml")
    assert problems == []
    assert [d.data for d in docs] == [{"a": 1, "b": ["x", {"c": 2}]}, {"d": "e"}]
    first = docs[0]
    assert first.values[("b", 1, "c")] == (4, 9)
    assert first.keys[("b", 1, "c")] == (4, 6)
    assert first.locate(("b", 1, "c", "deeper")).line == 4  # nearest known parent
    assert first.locate(("b", "a-union-tag", 0)).column == 5  # unknown elements are skipped
    assert docs[1].values[("d",)] == (6, 4)


def test_every_duplicate_key_is_reported() -> None:
    _, problems = read_text("a: 1\na: 2\nb: {x: 1, x: 2}\n", "f.yaml")
    assert [(p.line, p.column, p.code) for p in problems] == [
        (2, 1, "yaml-duplicate-key"),
        (3, 11, "yaml-duplicate-key"),
    ]


def test_a_few_aliases_are_fine_but_not_many() -> None:
    docs, problems = read_text("x: &x [1, 2]\ny: *x\nz: *x\n", "f.yaml")
    assert problems == [] and docs[0].data["z"] == [1, 2]
    many = "x: &x 1\ny: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    _, problems = read_text(many, "f.yaml")
    assert [p.code for p in problems] == ["yaml-aliases"]


def test_merge_keys_are_refused() -> None:
    _, problems = read_text("base: &b {a: 1}\nother:\n  <<: *b\n", "f.yaml")
    assert [(p.line, p.code) for p in problems] == [(3, "yaml-merge-key")]


def test_control_characters_and_encodings() -> None:
    _, problems = read_text("a: b\x07\n", "f.yaml")
    assert (problems[0].line, problems[0].column) == (1, 5)
    text, problems = decode("f.yaml", "\ufeffa: 1\n".encode())
    assert text == "a: 1\n" and problems == []
    text, problems = decode("f.yaml", b"a: 1\nb: \xc3\x28\n")
    assert text is None and (problems[0].line, problems[0].column) == (2, 4)


_TOKENS = [*"ab:-[]{}&*!|>'\"\t\n #,?%@`", "k: v\n", "  ", "---\n", "*a", "&a ", "!!str "]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=60).map("".join))
def test_arbitrary_text_never_raises(text: str) -> None:
    docs, problems = read_text(text, "f.yaml")
    assert docs or problems


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(tmp_path_factory: object, data: bytes) -> None:
    root = Path(str(tmp_path_factory.mktemp("fuzz")))  # type: ignore[attr-defined]
    (root / "f.yaml").write_bytes(data)
    result = load(root, secrets=SecretMode.OPTIONAL, env={})
    assert result.errors, "random bytes are not a valid policy set"
