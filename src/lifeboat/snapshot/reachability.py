"""Which blobs the snapshots need: the set ``check`` verifies and ``prune`` keeps.

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
    for manifest in manifests:
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
    return found
