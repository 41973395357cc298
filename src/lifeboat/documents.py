"""Versioned JSON documents: the one reader behind every Lifeboat JSON format.

Each format (the home, a guardian envelope's plaintext) is a JSON object with ``format`` and
``version`` fields. A reader accepts exactly its own format and the versions it knows, and
refuses anything else with a message naming what it found, never guessing.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from lifeboat.errors import InputError, LifeboatError


def parse_versioned(
    data: bytes,
    *,
    fmt: str,
    version: int | Collection[int],
    what: str,
    kind: str,
    error: type[LifeboatError],
) -> dict[str, Any]:
    """The JSON object in ``data``, after checking its ``format`` and ``version`` fields.

    ``version`` is the one version the reader knows, or several it can read. ``what`` names
    the document in messages (a path); ``kind`` says what it should be ("a Lifeboat home
    file"); ``error`` is the exception class to raise.
    """
    known = (version,) if isinstance(version, int) else tuple(sorted(version))
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{what} is not valid JSON ({exc}); it is not {kind}") from None
    if not isinstance(body, dict) or body.get("format") != fmt:
        raise error(f"{what} is not {kind}")
    found = body.get("version")
    if type(found) is not int or found not in known:
        versions = " or ".join(str(v) for v in known)
        raise error(
            f"{what} has {fmt} version {found!r}; this Lifeboat reads version {versions}, "
            "so use a Lifeboat that matches it"
        )
    return body


def canonical_json(document: object) -> bytes:
    """The canonical bytes of a JSON document: sorted keys, no spaces, ASCII only.

    Non-ASCII characters (and the surrogate escapes ``os.fsdecode`` makes of undecodable file
    names) are written as ``\\u`` escapes, so the same document always gives the same bytes,
    which is what is hashed, MACed and signed.

    >>> canonical_json({"b": 1, "a": "é"})
    b'{"a":"\\\\u00e9","b":1}'
    """
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def json_kind(value: object) -> str:
    """What kind of JSON value ``value`` is, for messages: "null", "a boolean", "an integer",
    "not an integer" (any other JSON number), "a string", "a list", "an object".

    >>> json_kind(1.5), json_kind("x"), json_kind(None)
    ('not an integer', 'a string', 'null')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "not an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def strict_json(data: bytes, what: str, error: type[LifeboatError], *, invalid: str | None = None) -> Any:
    """Parse JSON that must not repeat a field (a repeated field could hide one value from a check).

    Raises ``error`` naming ``what``: "<what> repeats the field 'x'", or ``invalid`` (default
    "<what> is not valid JSON").
    """

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise error(f"{what} repeats the field {key!r}")
            result[key] = value
        return result

    try:
        return json.loads(bytes(data), object_pairs_hook=no_repeats)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise error(invalid or f"{what} is not valid JSON") from None


def check_fields(
    body: Mapping[str, Any], expected: frozenset[str], what: str, error: type[LifeboatError]
) -> None:
    """Refuse a JSON object with a missing or an unknown field, naming them."""
    missing = sorted(expected - body.keys())
    if missing:
        raise error(f"{what} lacks {', '.join(repr(name) for name in missing)}")
    unknown = sorted(body.keys() - expected)
    if unknown:
        raise error(f"{what} has unknown field {', '.join(repr(name) for name in unknown)}")


def parse_strict_versioned(
    data: bytes | bytearray | memoryview,
    *,
    fmt: str,
    version: int,
    limit: int,
    what: str,
    kind: str,
    error: type[LifeboatError],
    newer: type[LifeboatError] | None = None,
) -> dict[str, Any]:
    """A document read from an untrusted place (a store): bounded, strict, versioned.

    Checks the size against ``limit``, parses with :func:`strict_json`, then the ``format`` and
    the ``version``: older versions than ``version`` are accepted for the caller to read (none
    exist yet), newer ones are refused with "upgrade Lifeboat". ``what`` names the document in
    messages ("key file"), ``kind`` says what it should be ("a Lifeboat repository key file").
    A newer version raises ``newer`` (default ``error``), so a caller can tell "damaged" from
    "written by a newer Lifeboat". The caller checks the fields (:func:`check_fields`).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputError(f"a {what} must be bytes, not {type(data).__name__}")
    if len(data) > limit:
        raise error(f"{what} is {len(data)} bytes, over the {limit}-byte limit")
    body = strict_json(bytes(data), what, error, invalid=f"{what} is not valid JSON; it is not {kind}")
    if not isinstance(body, dict) or body.get("format") != fmt:
        raise error(f"not {kind} (its 'format' is not {fmt})")
    found = body.get("version")
    if type(found) is not int or found < 1:
        raise error(f"{what} field 'version' is {found!r}, not a format version")
    if found > version:
        raise (newer or error)(
            f"{what} version {found} is newer than this Lifeboat reads (version {version}); "
            "upgrade Lifeboat to read it"
        )
    return body
