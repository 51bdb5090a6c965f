"""JSON Schema (draft 2020-12) of the policy documents, for editors and CI linters.

One schema accepts any one document: a `oneOf` over the kinds, told apart by `kind`. It is
generated from `policies/models.py` and the vendors registered in `policies/vendors.py`
(plug-ins included), so field descriptions, unknown-key rejection
(`additionalProperties: false`) and the unit patterns of `policies/units.py` come along.
The schema checks the shape of one document; checks across documents (unknown provider
names, shared addresses, budgets) and address checksums need `energyctl validate`.

`energyctl schema` prints it; `examples/policies/energyctl.schema.json` is a copy that the
examples name in their `# yaml-language-server: $schema=...` modeline.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from policies.deposits import DepositPolicy
from policies.models import EnergyPolicy, EngineConfig, provider_model

SCHEMA_ID = "https://energyctl.dev/schemas/energyctl-v1.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The schema as a dict: `$defs` for every model, and a `oneOf` on `kind` at the top.

    A Provider's `spec` is a `oneOf` over every registered vendor (`policies/vendors.py`),
    plug-ins included."""
    documents: Any = Annotated[
        provider_model() | EnergyPolicy | DepositPolicy | EngineConfig,
        Field(discriminator="kind"),
    ]
    generated = TypeAdapter(documents).json_schema(by_alias=True, mode="validation")
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "energyctl policy document",
        "description": "One document of an energyctl policy set: a Provider, an "
        "EnergyPolicy, a DepositPolicy or an EngineConfig (apiVersion energyctl/v1). "
        "See docs/policies.md.",
        **generated,
    }


def json_schema_text() -> str:
    """The schema as stable, indented JSON text ending with a newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
