"""Which blobs the snapshots need: the set ``check`` verifies and ``prune`` keeps.

This module sits above both pillars that store snapshots and joins their walks: file snapshots
reach their trees and chunks (:mod:`lifeboat.snapshot.reachability`); record snapshots reach the
nodes of their prolly tree and journal segments reach their blob
(:mod:`lifeboat.state.reachability`). Errors are collected rather than raised, so that ``check``
can report every snapshot that cannot be walked in one run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lifeboat.errors import LifeboatError
from lifeboat.snapshot.reachability import tree_root, walk_trees
from lifeboat.state.reachability import KINDS as STATE_KINDS
from lifeboat.state.reachability import hex_id, walk_nodes
from lifeboat.store.repository import Manifest, Repository


@dataclass
class Reachable:
    """Blob ids reachable from the snapshots (trees and file contents), and what could not be walked."""

    blobs: set[bytes] = field(default_factory=set)
    trees: int = 0
    errors: list[str] = field(default_factory=list)


def reachable_blobs(repo: Repository, manifests: Iterable[Manifest]) -> Reachable:
    """Every blob reachable from ``manifests``; unreadable trees are listed in ``errors``."""
    found = Reachable()
    tree_roots: list[tuple[bytes, str]] = []
    state_roots: list[tuple[bytes, str]] = []
    for manifest in manifests:
        kind = manifest.payload.get("kind")
        if kind in STATE_KINDS:
            try:
                if kind == "state":
                    state_roots.append(
                        (hex_id(manifest.payload.get("statement", {}).get("root")), manifest.short_id)
                    )
                else:
                    found.blobs.add(hex_id(manifest.payload.get("blob")))
            except (LifeboatError, AttributeError) as exc:
                found.errors.append(
                    f"record snapshot {manifest.short_id} names no valid root or blob ({exc})"
                )
            continue
        try:
            tree_roots.append((tree_root(manifest), manifest.short_id))
        except LifeboatError as exc:
            found.errors.append(str(exc))
    found.trees += walk_trees(repo, tree_roots, found.blobs, found.errors)
    found.trees += walk_nodes(repo, state_roots, found.blobs, found.errors)
    return found
