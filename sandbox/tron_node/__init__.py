"""Emulated TRON full node: the real resource model behind java-tron's HTTP API subset.

Modules, bottom to top: `model` (pure resource arithmetic), `accounts` (records and
parameters), `blocks` (block log), `reads` (storage and queries), `state` (transactions),
`wire` (java-tron JSON conventions), `control` (`/control/*`), `faults` (an outage, a stale
node), `app` (`/wallet*` routes, `create_app`, and `TronNode` on loopback). See
docs/sandbox-node.md.
"""

from sandbox.tron_node.accounts import USDT_CONTRACT, ChainParams, TronError
from sandbox.tron_node.app import TronNode, create_app
from sandbox.tron_node.faults import NodeFaults
from sandbox.tron_node.state import ChainState

__all__ = [
    "USDT_CONTRACT",
    "ChainParams",
    "ChainState",
    "NodeFaults",
    "TronError",
    "TronNode",
    "create_app",
]
