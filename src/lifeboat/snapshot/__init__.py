"""The ``snapshot`` pillar: what a backup records and how it is kept, built on the ``store`` pillar.

A snapshot is a signed manifest in the repository that points at a tree of files and directories
(tree blobs) whose contents are data blobs. This package holds the tree format and its path-safety
checks, the backup and restore workflows, and the ``forget`` retention policy; it talks to the
repository only through :class:`lifeboat.store.repository.Repository`. Record sets (protocol
state) are the :mod:`lifeboat.state` pillar; neither package imports the other.
"""
