"""Record snapshots as a prolly tree: a Merkle search tree with content-defined nodes and Merkle sums (pure).

The package is split along what a reader looks for; the names other modules use are re-exported
here, so callers write ``prolly.build`` or ``from lifeboat.state.prolly import Record``:

* :mod:`~lifeboat.state.prolly.node`: the node format (its byte layout is in that module's
  docstring), the record and node types, ids and hashing, the packed sums, decoding, and the
  reader that checks every node against its id;
* :mod:`~lifeboat.state.prolly.build`: building a tree from sorted records;
* :mod:`~lifeboat.state.prolly.update`: applying edits to a tree, rewriting only changed paths;
* :mod:`~lifeboat.state.prolly.read`: shape, lookup, scan, iteration and the diff of two trees;
* :mod:`~lifeboat.state.prolly.proof`: proofs of one record and of the totals (make, JSON, verify).

Layers inside: ``node`` <- ``build`` <- ``update``; ``node`` <- ``read``; ``node`` <- ``proof``.
Nothing here does I/O.
"""

from __future__ import annotations

from lifeboat.state.prolly.build import (
    Build,
    Builder,
    LeafRun,
    build,
    build_runs,
    leaf_run,
)
from lifeboat.state.prolly.node import (
    DEFAULT_FANOUT,
    ID_BYTES,
    MAX_FANOUT,
    MAX_KEY_BYTES,
    MAX_LEVEL,
    MAX_SUM_FIELDS,
    MAX_VALUE_BYTES,
    MIN_FANOUT,
    NODE_LIMIT_FACTOR,
    NODE_VERSION,
    Change,
    Child,
    DecodedNode,
    Delete,
    MemorySource,
    Node,
    NodeSource,
    Record,
    Tree,
    decode_node,
    empty_root,
)
from lifeboat.state.prolly.proof import (
    MAX_PROOF_BYTES,
    PROOF_FORMAT,
    PROOF_VERSION,
    Proof,
    ProofError,
    ProofStep,
    Prover,
    RecordPath,
    Sibling,
    VerifiedProof,
    prove,
    verify,
)
from lifeboat.state.prolly.read import (
    diff,
    iterate,
    lookup,
    read_tree,
    scan,
)
from lifeboat.state.prolly.update import (
    update,
)

__all__ = [
    "DEFAULT_FANOUT",
    "ID_BYTES",
    "MAX_FANOUT",
    "MAX_KEY_BYTES",
    "MAX_LEVEL",
    "MAX_PROOF_BYTES",
    "MAX_SUM_FIELDS",
    "MAX_VALUE_BYTES",
    "MIN_FANOUT",
    "NODE_LIMIT_FACTOR",
    "NODE_VERSION",
    "PROOF_FORMAT",
    "PROOF_VERSION",
    "Build",
    "Builder",
    "Change",
    "Child",
    "DecodedNode",
    "Delete",
    "LeafRun",
    "MemorySource",
    "Node",
    "NodeSource",
    "Proof",
    "ProofError",
    "ProofStep",
    "Prover",
    "Record",
    "RecordPath",
    "Sibling",
    "Tree",
    "VerifiedProof",
    "build",
    "build_runs",
    "decode_node",
    "diff",
    "empty_root",
    "iterate",
    "leaf_run",
    "lookup",
    "prove",
    "read_tree",
    "scan",
    "update",
    "verify",
]
