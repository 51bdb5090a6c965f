"""The JSON Schema: valid draft 2020-12, accepts every example, rejects unknown keys."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from policies.schema import json_schema, json_schema_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policies"


def _example_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.rglob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found.append((f"{path.relative_to(EXAMPLES)}:{doc['metadata']['name']}", doc))
    return found


EXAMPLE_DOCS = _example_documents()


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_examples_cover_every_kind_and_vendor() -> None:
    kinds = {doc["kind"] for _, doc in EXAMPLE_DOCS}
    vendors = {doc["spec"]["type"] for _, doc in EXAMPLE_DOCS if doc["kind"] == "Provider"}
    assert kinds == {"Provider", "EnergyPolicy", "DepositPolicy", "EngineConfig"}
    assert vendors == {"mefree", "itrx", "eopen", "tronsave"}


@pytest.mark.parametrize(("name", "doc"), EXAMPLE_DOCS, ids=[n for n, _ in EXAMPLE_DOCS])
def test_schema_accepts_every_example(
    validator: jsonschema.Draft202012Validator, name: str, doc: dict[str, Any]
) -> None:
    errors = [e.message for e in validator.iter_errors(doc)]
    assert errors == [], name


@pytest.mark.parametrize(
    "path", [("spec", "treshold"), ("metadata", "nmae"), ("spec", "topUp", "amonut"), ("extra",)]
)
def test_schema_rejects_an_unknown_key(
    validator: jsonschema.Draft202012Validator, path: tuple[str, ...]
) -> None:
    doc = copy.deepcopy(next(d for _, d in EXAMPLE_DOCS if d["kind"] == "EnergyPolicy"))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = 1
    assert not validator.is_valid(doc)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "threshold"), "65 kilo"),
        (("spec", "maxPrice"), 95),
        (("spec", "budget", "perDay"), 300),
        (("spec", "topUp", "duration"), 3600),
        (("kind",), "Policy"),
        (("spec", "exclusive"), "yes"),
    ],
)
def test_schema_rejects_bad_values(
    validator: jsonschema.Draft202012Validator, path: tuple[str, ...], value: object
) -> None:
    doc = copy.deepcopy(next(d for _, d in EXAMPLE_DOCS if d["kind"] == "EnergyPolicy"))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not validator.is_valid(doc)


def test_schema_rejects_an_inline_secret(validator: jsonschema.Draft202012Validator) -> None:
    doc = copy.deepcopy(next(d for _, d in EXAMPLE_DOCS if d["kind"] == "Provider"))
    doc["spec"]["apiKey"] = "inline-value"
    assert not validator.is_valid(doc)
    doc["spec"]["apiKey"] = {"fromEnv": "A", "fromFile": "b"}
    assert not validator.is_valid(doc)


def test_committed_schema_file_is_current() -> None:
    committed = (EXAMPLES / "energyctl.schema.json").read_text(encoding="utf-8")
    assert committed == json_schema_text(), "regenerate: energyctl schema > " + str(
        EXAMPLES.relative_to(ROOT) / "energyctl.schema.json"
    )
    assert json.loads(committed)["$schema"].endswith("2020-12/schema")


def test_examples_name_the_schema_in_a_modeline() -> None:
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert target == (EXAMPLES / "energyctl.schema.json").resolve(), path
