"""Which blobs the snapshots need: the set ``check`` verifies and ``prune`` keeps.

File snapshots reach their trees and chunks; record snapshots reach the nodes of their prolly
tree (only internal nodes are read: they name the leaves); journal segments reach their blob.
Walks the tree of every given snapshot, reading each distinct tree blob once (snapshots share
most of their trees, so this costs about one snapshot's worth of tree reads plus the changes).
A tree that cannot be read or decoded is an error for every snapshot that reaches it; the walk
goes on with the rest so that ``check`` can report all of them in one run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lifeboat.errors import LifeboatError
from lifeboat.snapshot.tree import decode_tree
from lifeboat.state import prolly
from lifeboat.store.repository import Manifest, Repository


@dataclass
class Reachable:
    """Blob ids reachable from the snapshots (trees and file contents), and what could not be walked."""

    blobs: set[bytes] = field(default_factory=set)
    trees: int = 0
    errors: list[str] = field(default_factory=list)


def _tree_id(manifest: Manifest) -> bytes:
    value = manifest.payload.get("tree")
    try:
        tree_id = bytes.fromhex(str(value))
    except ValueError:
        tree_id = b""
    if len(tree_id) != 32:
        raise LifeboatError(f"snapshot {manifest.short_id} names no valid root tree ({value!r})")
    return tree_id


def reachable_blobs(repo: Repository, manifests: Iterable[Manifest]) -> Reachable:
    """Every blob reachable from ``manifests``; unreadable trees are listed in ``errors``."""
    found = Reachable()
    pending: list[tuple[bytes, str]] = []
    state_roots: list[tuple[bytes, str]] = []
    for manifest in manifests:
        kind = manifest.payload.get("kind")
        if kind in ("state", "state-journal"):
            try:
                if kind == "state":
                    state_roots.append(
                        (_hex_id(manifest.payload.get("statement", {}).get("root")), manifest.short_id)
                    )
                else:
                    found.blobs.add(_hex_id(manifest.payload.get("blob")))
            except (LifeboatError, AttributeError) as exc:
                found.errors.append(
                    f"record snapshot {manifest.short_id} names no valid root or blob ({exc})"
                )
            continue
        try:
            pending.append((_tree_id(manifest), manifest.short_id))
        except LifeboatError as exc:
            found.errors.append(str(exc))
    seen: set[bytes] = set()
    while pending:
        tree_id, owner = pending.pop()
        if tree_id in seen:
            continue
        seen.add(tree_id)
        found.blobs.add(tree_id)
        try:
            nodes = decode_tree(repo.load_blob(tree_id))
        except LifeboatError as exc:
            found.errors.append(f"snapshot {owner}: tree {tree_id.hex()[:16]} cannot be read: {exc}")
            continue
        found.trees += 1
        for node in nodes:
            found.blobs.update(node.content)
            if node.subtree is not None:
                pending.append((node.subtree, owner))
    _walk_state(repo, state_roots, found)
    return found


def _hex_id(value: object) -> bytes:
    try:
        blob_id = bytes.fromhex(str(value))
    except ValueError:
        blob_id = b""
    if len(blob_id) != 32:
        raise LifeboatError(f"{value!r} is not a 64-hex-digit id")
    return blob_id


def _walk_state(repo: Repository, roots: list[tuple[bytes, str]], found: Reachable) -> None:
    """Add every node below ``roots``, reading internal nodes only (each once)."""
    seen: set[bytes] = set()
    pending = list(roots)
    while pending:
        node_id, owner = pending.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        found.blobs.add(node_id)
        try:
            node = prolly.decode_node(repo.load_blob(node_id))
        except LifeboatError as exc:
            found.errors.append(f"record snapshot {owner}: node {node_id.hex()[:16]} cannot be read: {exc}")
            continue
        if node.node_id != node_id:
            found.errors.append(f"record snapshot {owner}: node {node_id.hex()[:16]} does not match its id")
            continue
        found.trees += 1
        if node.level == 1:
            found.blobs.update(child.node_id for child in node.children)
        else:
            pending.extend((child.node_id, owner) for child in node.children)
