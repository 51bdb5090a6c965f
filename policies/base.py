"""Building blocks shared by every policy document: the base model, names, secret references.

`Model` (camelCase keys, unknown keys forbidden, frozen), `Metadata` (the document's name and
labels) and `SecretRef` (where a credential lives, never its value; the loader resolves it
into a `pydantic.SecretStr` that `SecretRef.get()` returns).

Neighbours: `policies/models.py` builds the document kinds on these; `policies/loading.py`
resolves secret references.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from policies.redacting import remember

API_VERSION = "energyctl/v1"
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_http_url(field: str, value: str) -> str:
    match = re.match(r"^https?://([^\s/@:]+)(?::([0-9]{1,5}))?(/\S*)?$", value)
    if not match:
        raise ValueError(
            f"{field} must be an http:// or https:// URL without credentials, got {value!r}"
        )
    host, port = match.group(1), match.group(2)
    if not host.isascii():  # which server a Unicode name reaches depends on the IDNA rules used
        try:
            spelled = f"; write it as {host.encode('idna').decode()!r}"
        except UnicodeError:
            spelled = ""
        raise ValueError(f"{field}: the host {host!r} is not ASCII{spelled} (its IDNA form)")
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"{field}: port {port} is not 1..65535, in {value!r}")
    return value


class Model(BaseModel):
    """Base of every policy model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        field_title_generator=lambda name, info: info.alias or name,
    )


class UnresolvedSecretError(LookupError):
    """A secret was needed but its reference could not be resolved."""


class SecretRef(Model):
    """Where a credential lives: exactly one of `fromEnv` or `fromFile`. Never the value."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["fromEnv"]}, {"required": ["fromFile"]}]}
    )

    from_env: str | None = Field(
        default=None, description="Name of the environment variable holding the secret."
    )
    from_file: str | None = Field(
        default=None,
        description="Path of a file holding the secret (trailing newline removed); "
        "relative paths are relative to the policy file.",
    )
    _value: SecretStr | None = PrivateAttr(default=None)
    _problem: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        if isinstance(data, (str, int)) and not isinstance(data, bool):
            raise ValueError(
                "inline secrets are not allowed (policy files live in git): "
                "write {fromEnv: NAME} or {fromFile: PATH}"
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.from_env is None) == (self.from_file is None):
            raise ValueError("a secret reference needs exactly one of fromEnv or fromFile")
        if self.from_env is not None and not _ENV_RE.match(self.from_env):
            raise ValueError(  # the value is not echoed: it may be a pasted secret
                "fromEnv must be an environment variable name like ITRX_API_KEY "
                "(letters, digits and '_', not starting with a digit)"
            )
        if self.from_file is not None and not self.from_file.strip():
            raise ValueError("fromFile must be a non-empty path")
        return self

    def describe(self) -> str:
        """Where the secret comes from, for messages: never the value."""
        if self.from_env is not None:
            return f"environment variable {self.from_env}"
        return f"file {self.from_file}"

    @property
    def resolved(self) -> bool:
        return self._value is not None

    def get(self) -> SecretStr:
        """The resolved secret; `UnresolvedSecretError` naming the source if there is none."""
        if self._value is None:
            raise UnresolvedSecretError(self._problem or f"{self.describe()} was not resolved")
        return self._value

    def _resolve(self, value: SecretStr | None, problem: str | None) -> None:
        """Set by the loader only (private attributes may be set on frozen models)."""
        remember(value)  # vendor text that echoes it is scrubbed (policies/redacting.py)
        self._value = value
        self._problem = problem


class Metadata(Model):
    """Identity of a document."""

    name: str = Field(
        description="Unique name among documents of the same kind: lowercase letters, digits "
        "and '-', 1-63 characters, starting and ending with a letter or digit."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Free-form labels, copied to metrics and status."
    )

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(
                f"invalid name {value!r}: use lowercase letters, digits and '-', "
                "1-63 characters, e.g. 'payouts-hot-wallet'"
            )
        return value
