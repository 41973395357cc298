"""The ``store`` pillar: a content-addressed object store over pluggable backends.

The bottom layer is :mod:`lifeboat.store.backends`: one narrow :class:`~.backends.Backend`
interface (put, get, list, delete, stat over slash-separated keys) with a local-directory
implementation and an S3-compatible one over ``obstore``. Retries, concurrency limits and
fault injection are wrappers that work around any backend. Higher layers (compression,
encryption, erasure coding, placement) build on this interface only.
"""
