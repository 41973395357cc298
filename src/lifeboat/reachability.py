"""Which blobs the snapshots need: the set ``check`` verifies and ``prune`` keeps.

This module sits above both pillars that store snapshots and joins their walks: file snapshots
reach their trees and chunks (:mod:`lifeboat.snapshot.reachability`); record snapshots reach the
nodes of their prolly tree and journal segments reach their blob
(:mod:`lifeboat.state.reachability`). Errors are collected rather than raised, so that ``check``
can report every snapshot that cannot be walked in one run.

:func:`check_with_snapshots` is ``lifeboat check``: those walks, then the store's own check
told which blobs must be in the index and how to read a record node's id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from lifeboat.errors import LifeboatError
from lifeboat.snapshot.reachability import tree_root, walk_trees
from lifeboat.state import prolly
from lifeboat.state.reachability import KINDS as STATE_KINDS
from lifeboat.state.reachability import hex_id, walk_nodes
from lifeboat.store.check import CheckReport, Progress, check_repository
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


@dataclass
class RepositoryCheck:
    """What :func:`check_with_snapshots` found: the store's report and the snapshots that cannot be walked."""

    report: CheckReport
    snapshot_errors: list[str]

    @property
    def status(self) -> Literal["healthy", "degraded", "error"]:
        """The report's status, except that a snapshot that cannot be walked is an error."""
        return "error" if self.snapshot_errors else self.report.status


def check_with_snapshots(
    repo: Repository, *, read_data: bool = False, progress: Progress | None = None
) -> RepositoryCheck:
    """Check ``repo`` the way ``lifeboat check`` does; it never changes anything.

    Every snapshot is walked (file trees, record trees, journal blobs) for the blobs it reaches,
    then :func:`lifeboat.store.check.check_repository` checks the stores, requiring each of those
    blobs in the index and, with ``read_data``, reading and authenticating every shard (record
    nodes are compared with their Merkle id). ``progress(phase, done, total)`` is passed on.
    """
    reach = reachable_blobs(repo, repo.manifests())
    report = check_repository(
        repo,
        read_data=read_data,
        referenced_blobs=reach.blobs,
        progress=progress,
        node_id=lambda data: prolly.decode_node(data).node_id,
    )
    return RepositoryCheck(report, reach.errors)
