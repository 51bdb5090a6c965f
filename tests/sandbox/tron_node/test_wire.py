"""The node's HTTP answers against the reference's pinned examples, field for field.

Shapes (keys present and absent, nesting, list lengths, value types) must equal the
examples in reference/tron.md; values that the scenario fixes (parameters, amounts, enum
names, `frozenV2`) must equal too. Served on loopback, read with httpx.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engine.core.clock import VirtualClock
from sandbox.tron_node import ChainParams, ChainState, TronNode
from sandbox.tron_node.accounts import to_hex
from tests.sandbox.tron_node.conftest import FRESH, OTHER, PROVIDER, TRX, USER

HEX_ADDRESS = re.compile(r"^41[0-9a-f]{40}$")

# reference/tron.md section 2.1, first and second examples.
RESOURCE_PLAIN = {
    "freeNetUsed": 441,
    "freeNetLimit": 600,
    "TotalNetLimit": 43200000000,
    "TotalNetWeight": 68305209098,
    "TotalEnergyLimit": 180000000000,
    "TotalEnergyWeight": 19000000000,
}
RESOURCE_DELEGATED = {
    "freeNetUsed": 345,
    "freeNetLimit": 600,
    "TotalNetLimit": 43200000000,
    "TotalNetWeight": 68305209098,
    "EnergyUsed": 43333,
    "EnergyLimit": 131000,
    "TotalEnergyLimit": 180000000000,
    "TotalEnergyWeight": 19000000000,
}
# Section 2.3 (visible: true).
ACCOUNT = {
    "address": "TVvjq...base58",
    "balance": 1793227200,
    "create_time": 1776933207000,
    "latest_opration_time": 1777444809000,
    "free_net_usage": 345,
    "latest_consume_free_time": 1777444809000,
    "net_window_size": 28800000,
    "net_window_optimized": True,
    "account_resource": {
        "energy_usage": 43333,
        "latest_consume_time_for_energy": 1777444809000,
        "energy_window_size": 28800000,
        "energy_window_optimized": True,
        "acquired_delegated_frozenV2_balance_for_energy": 13800000000,
    },
    "owner_permission": {
        "permission_name": "owner",
        "threshold": 1,
        "keys": [{"address": "TVvjq...", "weight": 1}],
    },
    "active_permission": [
        {
            "type": "Active",
            "id": 2,
            "permission_name": "active",
            "threshold": 1,
            "operations": "7fff1fc0033efb0f000000000000000000000000000000000000000000000000",
            "keys": [{"address": "TVvjq...", "weight": 1}],
        }
    ],
    "frozenV2": [{}, {"type": "ENERGY"}, {"type": "TRON_POWER"}],
}
# Section 2.7.
DELEGATED = {
    "delegatedResource": [
        {"from": "TProv...", "to": "TUser...", "frozen_balance_for_energy": 13800000000},
        {
            "from": "TProv...",
            "to": "TUser...",
            "frozen_balance_for_energy": 1000000000,
            "expire_time_for_energy": 1777531209000,
        },
    ]
}
# Section 2.4 (a block holding one USDT transfer).
NOW_BLOCK = {
    "blockID": "0000000003fe266bf6b6d392f654dc2e5011601546ed04623d9fcc4e9d439a25",
    "block_header": {
        "raw_data": {
            "number": 66987627,
            "txTrieRoot": "f815...",
            "witness_address": "41e786...",
            "parentHash": "0000000003fe266a...",
            "version": 34,
            "timestamp": 1777445307000,
        },
        "witness_signature": "55a2...",
    },
    "transactions": [
        {
            "ret": [{"contractRet": "SUCCESS"}],
            "signature": ["..."],
            "txID": "...",
            "raw_data": {
                "contract": [
                    {
                        "parameter": {
                            "value": {
                                "data": "a9059cbb...",
                                "owner_address": "41...",
                                "contract_address": "41a614f803b6fd780986a42c78ec9c7f77e6ded13c",
                            },
                            "type_url": "type.googleapis.com/protocol.TriggerSmartContract",
                        },
                        "type": "TriggerSmartContract",
                    }
                ],
                "ref_block_bytes": "1c8b",
                "ref_block_hash": "d78785ed02dd918f",
                "expiration": 1777437813000,
                "fee_limit": 100000000,
                "timestamp": 1777437756016,
            },
            "raw_data_hex": "0a02...",
        }
    ],
}


def assert_same_shape(actual: Any, pinned: Any, path: str = "$") -> None:
    """Same keys (so the same omissions), same list lengths, same scalar types."""
    if isinstance(pinned, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(pinned), f"{path}: {sorted(actual)} != {sorted(pinned)}"
        for key, value in pinned.items():
            assert_same_shape(actual[key], value, f"{path}.{key}")
    elif isinstance(pinned, list):
        assert isinstance(actual, list) and len(actual) == len(pinned), path
        for i, (a, p) in enumerate(zip(actual, pinned, strict=True)):
            assert_same_shape(a, p, f"{path}[{i}]")
    else:
        assert type(actual) is type(pinned), f"{path}: {actual!r} vs {pinned!r}"


@pytest.fixture
def scene() -> Iterator[tuple[httpx.Client, ChainState, VirtualClock]]:
    """Weights set so TotalEnergyWeight is the reference's 19e9 after the provider stakes."""
    clock = VirtualClock()
    chain = ChainState(clock, ChainParams(total_energy_weight=19_000_000_000 - 10_000_000))
    chain.create_account(PROVIDER, 20_000_000 * TRX)
    chain.stake_energy(PROVIDER, 10_000_000 * TRX)
    chain.create_account(USER, 100 * TRX)
    with TronNode.start(chain) as node, httpx.Client(base_url=node.url) as client:
        yield client, chain, clock


def post(client: httpx.Client, path: str, body: dict[str, Any] | None = None) -> Any:
    response = client.post(path, json=body or {})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.text.endswith("\n")
    return response.json()


def test_account_resource_plain(scene: tuple[httpx.Client, ChainState, VirtualClock]) -> None:
    client, chain, _ = scene
    chain.transfer_usdt(USER, OTHER)  # burns TRX for energy; uses free bandwidth only
    got = post(client, "/wallet/getaccountresource", {"address": USER, "visible": True})
    assert_same_shape(got, RESOURCE_PLAIN)
    assert got == {**RESOURCE_PLAIN, "freeNetUsed": 345}


def test_account_resource_and_account_after_delegation_and_use(
    scene: tuple[httpx.Client, ChainState, VirtualClock],
) -> None:
    client, chain, clock = scene
    chain.delegate_energy(PROVIDER, USER, 13_800 * TRX)
    chain.mark_usdt_holder(OTHER)
    chain.transfer_usdt(USER, OTHER)
    clock.advance(8 * 3600)
    got = post(client, "/wallet/getaccountresource", {"address": USER, "visible": True})
    assert_same_shape(got, RESOURCE_DELEGATED)
    assert got["EnergyLimit"] == int(13_800 * (180e9 / 19e9)) == 130_736
    assert got["EnergyUsed"] == 42_856  # 64,285 two thirds recovered
    assert got["freeNetUsed"] == 230
    account = post(client, "/wallet/getaccount", {"address": USER, "visible": True})
    assert_same_shape(account, ACCOUNT)
    assert account["address"] == USER
    assert account["frozenV2"] == [{}, {"type": "ENERGY"}, {"type": "TRON_POWER"}]
    resource = account["account_resource"]
    assert resource["acquired_delegated_frozenV2_balance_for_energy"] == 13_800 * TRX
    assert resource["energy_usage"] == 42_856
    assert resource["energy_window_size"] == 19_200_000  # the remaining 16 h, x 1000
    head_ms = chain.head_timestamp_ms()
    assert resource["latest_consume_time_for_energy"] == head_ms - 8 * 3600 * 1000
    hex_account = post(client, "/wallet/getaccount", {"address": to_hex(USER)})
    assert hex_account["address"] == to_hex(USER)
    assert hex_account["owner_permission"]["keys"][0]["address"] == to_hex(USER)


def test_delegated_resource_v2_unlocked_then_locked(
    scene: tuple[httpx.Client, ChainState, VirtualClock],
) -> None:
    client, chain, _ = scene
    chain.delegate_energy(PROVIDER, USER, 1_000 * TRX, lock_period_blocks=28_800)
    chain.delegate_energy(PROVIDER, USER, 13_800 * TRX)
    body = {"fromAddress": PROVIDER, "toAddress": USER, "visible": True}
    got = post(client, "/wallet/getdelegatedresourcev2", body)
    assert_same_shape(got, DELEGATED)
    first, second = got["delegatedResource"]
    assert (first["from"], first["to"]) == (PROVIDER, USER)
    assert first["frozen_balance_for_energy"] == 13_800 * TRX
    assert second["expire_time_for_energy"] == chain.head_timestamp_ms() + 86_400_000
    index = post(
        client, "/wallet/getdelegatedresourceaccountindexv2", {"value": USER, "visible": True}
    )
    assert index == {"account": USER, "fromAccounts": [PROVIDER]}
    body = {"value": FRESH, "visible": True}
    assert post(client, "/wallet/getdelegatedresourceaccountindexv2", body) == {"account": FRESH}
    body = {"fromAddress": USER, "toAddress": PROVIDER, "visible": True}
    assert post(client, "/wallet/getdelegatedresourcev2", body) == {}


def test_now_block_ignores_post_body_visible(
    scene: tuple[httpx.Client, ChainState, VirtualClock],
) -> None:
    client, chain, clock = scene
    clock.advance(3)  # block 1 holds the provider's stake
    chain.transfer_usdt(USER, OTHER)
    clock.advance(3)
    got = post(client, "/wallet/getnowblock", {"visible": True})
    assert_same_shape(got, NOW_BLOCK)
    assert got["block_header"]["raw_data"]["number"] == chain.head_block_number()
    assert int(got["blockID"][:16], 16) == chain.head_block_number()
    assert HEX_ADDRESS.match(got["block_header"]["raw_data"]["witness_address"])
    value = got["transactions"][0]["raw_data"]["contract"][0]["parameter"]["value"]
    assert value["owner_address"] == to_hex(USER)
    assert value["data"].startswith("a9059cbb") and to_hex(OTHER)[2:] in value["data"]
    by_query = client.post("/wallet/getnowblock?visible=true", json={}).json()
    assert by_query["block_header"]["raw_data"]["witness_address"].startswith("T")
    by_num = post(client, "/wallet/getblockbynum", {"num": 2, "visible": True})
    value = by_num["transactions"][0]["raw_data"]["contract"][0]["parameter"]["value"]
    assert value["contract_address"] == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    clock.advance(3)
    empty = post(client, "/wallet/getnowblock")
    assert "transactions" not in empty


def test_node_info_and_solidity(scene: tuple[httpx.Client, ChainState, VirtualClock]) -> None:
    client, chain, clock = scene
    clock.advance(300)
    info = post(client, "/wallet/getnodeinfo")
    head = chain.head_block_number()
    assert info["block"] == f"Num:{head},ID:{chain.blocks.block_id(head)}"
    assert info["solidityBlock"].startswith(f"Num:{head - 19},ID:{head - 19:016x}")
    solid = post(client, "/walletsolidity/getnowblock")
    assert solid["block_header"]["raw_data"]["number"] == head - 19
    assert post(client, "/walletsolidity/getblockbynum", {"num": head}) == {}
    assert client.post("/walletsolidity/getaccountresource", json={}).status_code == 404
    assert client.post("/wallet/getAccount", json={}).status_code == 404  # paths are lower-case


def test_empty_answers(scene: tuple[httpx.Client, ChainState, VirtualClock]) -> None:
    client = scene[0]
    for path in ("getaccount", "getaccountresource", "getaccountnet"):
        assert post(client, f"/wallet/{path}", {"address": FRESH, "visible": True}) == {}
    assert post(client, "/wallet/getblockbynum", {"num": 10}) == {}
    assert post(client, "/wallet/gettransactioninfobyid", {"value": "00" * 32}) == {}
    assert post(client, "/wallet/gettransactioninfobyblocknum", {"num": 0}) == {}
    assert post(client, "/wallet/gettransactioninfobyblocknum", {"num": 1}) == []
    body = {"owner_address": USER, "type": 1, "visible": True}
    assert post(client, "/wallet/getcandelegatedmaxsize", body) == {}
    body = {"owner_address": PROVIDER, "type": 1, "visible": True}
    assert post(client, "/wallet/getcandelegatedmaxsize", body) == {"max_size": 10_000_000 * TRX}


def test_error_answers(scene: tuple[httpx.Client, ChainState, VirtualClock]) -> None:
    client, _, _ = scene
    bad_hex = post(client, "/wallet/getaccountresource", {"address": "41zz"})
    assert bad_hex["Error"].startswith("class org.bouncycastle.util.encoders.DecoderException : ")
    bad_b58 = post(client, "/wallet/getaccountresource", {"address": "Tnope", "visible": True})
    assert bad_b58["Error"].startswith("class java.lang.IllegalArgumentException : ")
    account_hex = post(client, "/wallet/getaccount", {"address": "41zz"})
    assert account_hex["Error"].endswith("JsonFormat$ParseException : INVALID hex String")
    checksum = USER[:-1] + ("a" if USER[-1] != "a" else "b")
    account_b58 = post(client, "/wallet/getaccount", {"address": checksum, "visible": True})
    assert account_b58 == {"Error": "class java.lang.NullPointerException : null"}
    negative = post(client, "/wallet/getblock", {"id_or_num": "-1"})
    assert negative == {"Error": "num must be greater than or equal to 0"}
    assert list(post(client, "/wallet/getblock", {"id_or_num": "zz"})) == ["Error"]


def test_get_requests_and_chain_parameters(
    scene: tuple[httpx.Client, ChainState, VirtualClock],
) -> None:
    client, _, _ = scene
    got = client.get("/wallet/getaccount", params={"address": USER, "visible": "true"}).json()
    assert got["address"] == USER and got["balance"] == 100 * TRX
    params = post(client, "/wallet/getchainparameters", {"visible": True})["chainParameter"]
    by_key = {p["key"]: p.get("value", 0) for p in params}
    assert by_key["getEnergyFee"] == 100
    assert by_key["getTotalEnergyLimit"] == 180_000_000_000
    assert {"key": "getAllowAdaptiveEnergy"} in params  # value 0 omitted


def test_transaction_receipts_by_block(
    scene: tuple[httpx.Client, ChainState, VirtualClock],
) -> None:
    client, chain, clock = scene
    chain.delegate_energy(PROVIDER, USER, 5_000 * TRX)
    txid = chain.transfer_usdt(USER, OTHER)
    clock.advance(3)
    infos = post(client, "/wallet/gettransactioninfobyblocknum", {"num": 1})
    assert [i["id"] for i in infos][-1] == txid
    receipt = infos[-1]["receipt"]
    pool = int(5_000 * (180e9 / 19e9))
    assert receipt["energy_usage"] == pool
    assert receipt["energy_fee"] == (130_285 - pool) * 100
    assert receipt["energy_usage_total"] == 130_285
    assert receipt["result"] == "SUCCESS"
    assert infos[-1]["fee"] == receipt["energy_fee"]
    by_id = post(client, "/wallet/gettransactioninfobyid", {"value": txid})
    assert by_id == infos[-1]
    delegation = post(client, "/wallet/getblock", {"id_or_num": "1", "detail": True})
    kinds = [t["raw_data"]["contract"][0]["type"] for t in delegation["transactions"]]
    assert kinds == ["FreezeBalanceV2Contract", "DelegateResourceContract", "TriggerSmartContract"]
    value = delegation["transactions"][1]["raw_data"]["contract"][0]["parameter"]["value"]
    assert value["receiver_address"] == to_hex(USER)
    header_only = post(client, "/wallet/getblock", {"id_or_num": delegation["blockID"]})
    assert "transactions" not in header_only
    assert header_only["blockID"] == delegation["blockID"]
