"""CPU time to process one 300-transaction block against 100,000 watched addresses.

Builds a block in getblockbynum's shape (reference/tron.md §2.4) and its transaction infos
(§2.11): mostly USDT transfers, some TRX transfers, delegations and undelegations, from a
mix of watched and unwatched owners, a fifth of them with hex addresses (as getnowblock
prints them). Then times, in process CPU time, `engine.observe.following.analyse_block` alone and
JSON decoding of both bodies plus the analysis, cold (first sight of the hex addresses)
and warm (median of repeats). The RESULT line reports the cold decode+analyse time, the
worst case. Target: under 100 ms.

    .venv/bin/python bench/block_follow.py [--txs 300] [--watched 100000] [--repeat 50]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import time
from typing import Any

from tronpy.keys import to_base58check_address, to_hex_address

from engine.observe.following import analyse_block

USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


def address(i: int) -> str:
    return str(to_base58check_address(b"\x41" + i.to_bytes(20, "big")))


def build(n_txs: int, watched: list[str], seed: int = 7) -> tuple[bytes, bytes]:
    rng = random.Random(seed)
    strangers = [address(10_000_000 + i) for i in range(n_txs)]
    txs: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    for i in range(n_txs):
        owner = rng.choice(watched) if rng.random() < 0.5 else strangers[i]
        if rng.random() < 0.2:
            owner = str(to_hex_address(owner))
        other = rng.choice(watched)
        roll = rng.random()
        value: dict[str, Any]
        if roll < 0.8:
            kind, value = "TriggerSmartContract", {"owner_address": owner, "contract_address": USDT}
            value["data"] = "a9059cbb" + "00" * 64
            receipt = {"energy_usage": 64_285, "energy_usage_total": 64_285, "net_usage": 345}
        elif roll < 0.9:
            kind, value = "TransferContract", {"owner_address": owner, "to_address": other}
            value["amount"] = 1_000_000
            receipt = {"net_usage": 268}
        else:
            kind = rng.choice(["DelegateResourceContract", "UnDelegateResourceContract"])
            value = {"owner_address": owner, "receiver_address": other, "balance": 10**9}
            value["resource"] = "ENERGY"
            receipt = {"net_usage": 280}
        txid = hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
        txs.append(
            {
                "ret": [{"contractRet": "SUCCESS"}],
                "signature": ["ab" * 65],
                "txID": txid,
                "raw_data": {
                    "contract": [
                        {
                            "parameter": {
                                "value": value,
                                "type_url": f"type.googleapis.com/{kind}",
                            },
                            "type": kind,
                        }
                    ],
                    "ref_block_bytes": "1c8b",
                    "ref_block_hash": "d78785ed02dd918f",
                    "expiration": 1_777_437_813_000,
                    "fee_limit": 100_000_000,
                    "timestamp": 1_777_437_756_016,
                },
                "raw_data_hex": "0a02" + "00" * 150,
            }
        )
        infos.append(
            {"id": txid, "blockNumber": 66_987_627, "receipt": receipt | {"result": "SUCCESS"}}
        )
    block = {
        "blockID": "0000000003fe266b" + "f6" * 24,
        "block_header": {
            "raw_data": {"number": 66_987_627, "parentHash": "0000000003fe266a" + "00" * 24},
            "witness_signature": "55" * 65,
        },
        "transactions": txs,
    }
    return json.dumps(block).encode(), json.dumps(infos).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=300)
    parser.add_argument("--watched", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()

    watch_list = [address(i) for i in range(1, args.watched + 1)]
    watched = set(watch_list)
    block_body, infos_body = build(args.txs, watch_list)

    def full() -> Any:
        return analyse_block(json.loads(block_body), json.loads(infos_body), watched)

    t0 = time.process_time()
    report = full()  # cold: hex owners converted for the first time
    cold_ms = (time.process_time() - t0) * 1000
    block, infos = json.loads(block_body), json.loads(infos_body)
    warm_full, warm_analyse = [], []
    for _ in range(args.repeat):
        t0 = time.process_time()
        full()
        warm_full.append((time.process_time() - t0) * 1000)
        t0 = time.process_time()
        analyse_block(block, infos, watched)
        warm_analyse.append((time.process_time() - t0) * 1000)

    print(f"block: {args.txs} transactions, {len(block_body) + len(infos_body):,} bytes of JSON")
    print(f"watched addresses: {len(watched):,}; reported: {len(report.touched)} touched")
    print(f"{'measure (process CPU time)':<44}{'ms':>10}")
    print(f"{'decode + analyse, cold (first sight)':<44}{cold_ms:>10.2f}")
    print(f"{'decode + analyse, warm (median)':<44}{statistics.median(warm_full):>10.2f}")
    print(f"{'analyse only, warm (median)':<44}{statistics.median(warm_analyse):>10.2f}")
    print(f"RESULT watched={len(watched)} txs={args.txs} cpu_ms={cold_ms:.2f}")


if __name__ == "__main__":
    main()
