"""The OpenAPI 3.1 document of the sidecar's HTTP API (served at `GET /openapi.json`).

Hand-written: every endpoint of `service.py`, its JSON bodies and its answers.
A test checks that every route the app serves is described here and nothing more.
Neighbours: `service.py`; `docs/sidecar.md` explains the same API in prose.
"""

from __future__ import annotations

from typing import Any

from engine import __version__

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "The body is not a JSON object.",
        401: "Missing or wrong bearer token (or, for callbacks, a bad signature or timestamp).",
        403: "Mutating endpoints are off: no http.apiToken is configured.",
        404: "Unknown address or provider.",
        409: "Another replica reconciles this address: `owner` names it.",
        413: "The body is too large.",
        422: "The request is not valid; `error` (and `errors`) say why.",
        503: "Not ready, or stopping.",
    }
    return {str(code): _json(_ERROR, text[code]) for code in codes}


_ENSURE_REQUEST = {
    "type": "object",
    "properties": {
        "address": {"type": "string", "description": "A watched address (base58)."},
        "energy": {
            "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}],
            "description": 'Energy that must be available: 65000 or "65k".',
        },
        "wait": {
            "type": "number",
            "minimum": 0,
            "maximum": 300,
            "default": 0,
            "description": "Seconds to wait for the energy to be on chain (0: do not wait).",
        },
    },
    "required": ["address", "energy"],
}
_ENSURE_ANSWER = {
    "type": "object",
    "properties": {
        "address": {"type": "string"},
        "energy": {"type": "integer"},
        "available": {"type": ["integer", "null"]},
        "satisfied": {"type": "boolean", "description": "available >= energy on chain."},
        "timed_out": {"type": "boolean"},
        "condition": {"type": ["string", "null"]},
        "reason": {"type": ["string", "null"]},
        "detail": {"type": ["string", "null"]},
        "order": {"type": ["object", "null"], "description": "The purchase this request made."},
    },
    "required": ["address", "energy", "satisfied"],
}
_POLICIES_REQUEST = {
    "type": "object",
    "properties": {
        "files": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "File name (NAME.yaml) -> YAML text of a complete policy set.",
        }
    },
    "required": ["files"],
}
_ADDRESS_ANSWER = {
    "type": "object",
    "properties": {
        "address": {"type": "string"},
        "policy": {"type": ["string", "null"]},
        "watched": {"type": "boolean"},
        "energyReady": {"type": "boolean", "description": "The episode's energy is on chain."},
        "episode": {"type": ["object", "null"], "description": "The latest deposit episode."},
        "order": {"type": ["object", "null"], "description": "The episode's order."},
        "chain": {"type": ["object", "null"], "description": "Energy read from the node."},
    },
    "required": ["address", "watched", "energyReady"],
}
_DEPOSIT_ADDRESSES_REQUEST = {
    "type": "object",
    "properties": {
        "policy": {"type": "string", "description": "A DepositPolicy's metadata.name."},
        "add": {"type": "array", "items": {"type": "string"}, "maxItems": 10000},
        "remove": {"type": "array", "items": {"type": "string"}, "maxItems": 10000},
    },
    "required": ["policy"],
}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh dict each call)."""
    get = "get"
    return {
        "openapi": "3.1.0",
        "info": {"title": "energyctl sidecar", "version": __version__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/healthz": {get: {"summary": "The process answers.", "responses": {
                "200": _json({"type": "object"}, "Alive.")}}},
            "/readyz": {get: {
                "summary": "Store reachable, a recent pass finished, observation fresh.",
                "responses": {"200": _json({"type": "object"}, "Ready."), **_errors(503)},
            }},
            "/metrics": {get: {
                "summary": "Prometheus text exposition.",
                "responses": {"200": {"description": "Metrics.",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }},
            "/openapi.json": {get: {"summary": "This document.", "responses": {
                "200": _json({"type": "object"}, "OpenAPI 3.1.")}}},
            "/v1/status": {get: {
                "summary": "Policy revision, reload errors, last pass, every address's plan.",
                "responses": {"200": _json({"type": "object"}, "Status.")},
            }},
            "/v1/orders": {get: {
                "summary": "Orders from the store, newest first.",
                "parameters": [
                    {"name": "address", "in": "query", "schema": {"type": "string"}},
                    {"name": "provider", "in": "query", "schema": {"type": "string"}},
                    {"name": "state", "in": "query", "schema": {"type": "string"},
                     "description": "A phase, or `open`; repeatable."},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
                ],
                "responses": {"200": _json({"type": "array", "items": {"type": "object"}},
                                           "Orders."), **_errors(422, 503)},
            }},
            "/v1/ensure": {"post": {
                "summary": "Buy now if needed so that the address has `energy` available.",
                "security": _BEARER,
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ENSURE_REQUEST}}},
                "responses": {"200": _json(_ENSURE_ANSWER, "What the pass decided."),
                              **_errors(400, 401, 403, 404, 409, 413, 422, 503)},
            }},
            "/v1/addresses/{address}": {get: {
                "summary": "A deposit address: its episode, that episode's order, its energy.",
                "parameters": [{"name": "address", "in": "path", "required": True,
                                "schema": {"type": "string",
                                           "pattern": "^T[1-9A-HJ-NP-Za-km-z]{33}$"}}],
                "responses": {"200": _json(_ADDRESS_ANSWER, "The address."), **_errors(404)},
            }},
            "/v1/deposit-addresses": {"post": {
                "summary": "Add or remove deposit addresses of a policy (kept in the store).",
                "security": _BEARER,
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _DEPOSIT_ADDRESSES_REQUEST}}},
                "responses": {"200": _json({"type": "object", "properties": {
                    "policy": {"type": "string"}, "added": {"type": "integer"},
                    "removed": {"type": "integer"}, "watched": {"type": "integer"}}},
                    "Changed."), **_errors(400, 401, 403, 404, 413, 422, 503)},
            }},
            "/v1/policies": {"post": {
                "summary": "Validate a policy set and put it in force (energyctl apply --server).",
                "security": _BEARER,
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _POLICIES_REQUEST}}},
                "responses": {"200": _json({"type": "object", "properties": {
                    "revision": {"type": "string"}, "applied": {"type": "boolean"}}},
                    "In force."), **_errors(400, 401, 403, 413, 422, 503),
                    "409": _json(_ERROR, "The set changes the store, the node or the HTTP "
                                 "listener, fixed until a restart: `restartRequired` says "
                                 "which; the running set stays in force.")},
            }},
            "/v1/callbacks/{provider}": {"post": {
                "summary": "A vendor's signed callback (itrx); only wakes the loop.",
                "parameters": [{"name": "provider", "in": "path", "required": True,
                                "schema": {"type": "string"}},
                               {"name": "TIMESTAMP", "in": "header", "required": False,
                                "schema": {"type": "string"},
                                "description": "Unix seconds (itrx); stale ones are refused."},
                               {"name": "SIGNATURE", "in": "header", "required": False,
                                "schema": {"type": "string"},
                                "description": "Hex HMAC-SHA256 of TIMESTAMP&body (itrx)."}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": _json({"type": "object"}, "Accepted."),
                              **_errors(401, 404, 413, 503)},
            }},
        },
    }  # fmt: skip


__all__ = ["document"]
