"""The ``state`` pillar: signed snapshots of record sets (DeFi protocol state), built on ``store``.

A record snapshot is a signed statement about the root of a prolly tree (a Merkle search tree with
a Merkle sum per node) whose nodes are blobs in the repository. This package holds the tree
(:mod:`~lifeboat.state.prolly`), what a record is (:mod:`~lifeboat.state.record`) with its sources
and sinks (:mod:`~lifeboat.state.records`, SQL ones in :mod:`~lifeboat.state.records_sql`), the statement
and its signature (:mod:`~lifeboat.state.statement`), journals of changes
(:mod:`~lifeboat.state.journal`), invariants (:mod:`~lifeboat.state.invariants`) and the
workflows that store, read, verify and roll back snapshots (:mod:`~lifeboat.state.snapshots`),
and the nodes a snapshot reaches, for ``check`` and ``prune`` (:mod:`~lifeboat.state.reachability`).
It talks to the repository only through :class:`lifeboat.store.repository.Repository` and does
not import :mod:`lifeboat.snapshot` (file trees).
"""
