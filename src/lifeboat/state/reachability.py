"""The blobs a record snapshot or journal segment needs: the nodes of its prolly tree, or its blob.

:func:`lifeboat.reachability.reachable_blobs` calls this for manifests of kind ``state`` and
``state-journal`` (and :mod:`lifeboat.snapshot.reachability` for file snapshots). Only internal
nodes are read: they name the leaves. Each distinct node is read once and checked against its id;
a node that cannot be read is an error for the snapshot that reaches it, and the walk goes on.
"""

from __future__ import annotations

from lifeboat.errors import LifeboatError
from lifeboat.state import prolly
from lifeboat.store.repository import Repository

#: The manifest kinds this module walks.
KINDS = ("state", "state-journal")


def hex_id(value: object) -> bytes:
    """A 32-byte id from its 64 hex digits; :class:`LifeboatError` otherwise."""
    try:
        blob_id = bytes.fromhex(str(value))
    except ValueError:
        blob_id = b""
    if len(blob_id) != 32:
        raise LifeboatError(f"{value!r} is not a 64-hex-digit id")
    return blob_id


def walk_nodes(repo: Repository, roots: list[tuple[bytes, str]], blobs: set[bytes], errors: list[str]) -> int:
    """Add to ``blobs`` every node below ``roots`` (root id, owning snapshot); return nodes read."""
    nodes = 0
    seen: set[bytes] = set()
    pending = list(roots)
    while pending:
        node_id, owner = pending.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        blobs.add(node_id)
        try:
            node = prolly.decode_node(repo.load_blob(node_id))
        except LifeboatError as exc:
            errors.append(f"record snapshot {owner}: node {node_id.hex()[:16]} cannot be read: {exc}")
            continue
        if node.node_id != node_id:
            errors.append(f"record snapshot {owner}: node {node_id.hex()[:16]} does not match its id")
            continue
        nodes += 1
        if node.level == 1:
            blobs.update(child.node_id for child in node.children)
        else:
            pending.extend((child.node_id, owner) for child in node.children)
    return nodes
