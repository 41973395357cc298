"""The blobs a file snapshot needs: its root tree, every tree below it and their chunks.

:func:`lifeboat.reachability.reachable_blobs` calls this for file snapshots (and
:mod:`lifeboat.state.reachability` for record snapshots) to find what ``check`` verifies and
``prune`` keeps. Each distinct tree blob is read once (snapshots share most of their trees, so
this costs about one snapshot's worth of tree reads plus the changes). A tree that cannot be read
or decoded is an error for every snapshot that reaches it; the walk goes on with the rest.
"""

from __future__ import annotations

from lifeboat.errors import LifeboatError
from lifeboat.snapshot.tree import decode_tree
from lifeboat.store.repository import Manifest, Repository


def tree_root(manifest: Manifest) -> bytes:
    """The root tree id a file snapshot names; :class:`LifeboatError` if it names no valid one."""
    value = manifest.payload.get("tree")
    try:
        tree_id = bytes.fromhex(str(value))
    except ValueError:
        tree_id = b""
    if len(tree_id) != 32:
        raise LifeboatError(f"snapshot {manifest.short_id} names no valid root tree ({value!r})")
    return tree_id


def walk_trees(repo: Repository, roots: list[tuple[bytes, str]], blobs: set[bytes], errors: list[str]) -> int:
    """Add to ``blobs`` every tree and chunk below ``roots`` (root id, owning snapshot); return trees read."""
    trees = 0
    seen: set[bytes] = set()
    pending = list(roots)
    while pending:
        tree_id, owner = pending.pop()
        if tree_id in seen:
            continue
        seen.add(tree_id)
        blobs.add(tree_id)
        try:
            nodes = decode_tree(repo.load_blob(tree_id))
        except LifeboatError as exc:
            errors.append(f"snapshot {owner}: tree {tree_id.hex()[:16]} cannot be read: {exc}")
            continue
        trees += 1
        for node in nodes:
            blobs.update(node.content)
            if node.subtree is not None:
                pending.append((node.subtree, owner))
    return trees
