"""The tree blob: one directory of a file snapshot, as canonical JSON (pure).

A tree blob lists the entries of one directory, sorted by name::

    {"format": "lifeboat-tree", "version": 1, "nodes": [
      {"name": "a.txt", "type": "file", "mode": 420, "mtime_ns": 1, "size": 12, "inode": 5,
       "device": 2049, "content": ["<64 hex blob id>", ...]},
      {"name": "sub", "type": "dir", "mode": 493, "mtime_ns": 1, "subtree": "<64 hex>"},
      {"name": "l", "type": "symlink", "mode": 511, "mtime_ns": 1, "target": "../x"}]}

Version 2 adds special files: ``{"name": "p", "type": "fifo", "mode": 420, "mtime_ns": 1}`` and
``{"name": "null", "type": "chardev" | "blockdev", "mode": 438, "mtime_ns": 1, "major": 1,
"minor": 3}``. A tree is written as version 1 when it holds none of them (so trees without
special files are byte-identical to those of earlier releases and dedup with them) and as version
2 otherwise; a reader that knows only version 1 refuses such a tree by its version, never by
guessing at an unknown entry type. Version 1 with a special entry, or version 2 without one, is
not canonical and refused.

Canonical JSON is ``json.dumps(obj, sort_keys=True, separators=(",", ":"))`` with ASCII
escapes, so the bytes of a tree depend only on its contents and equal trees dedup to one blob.
Names and symlink targets are :func:`os.fsdecode` strings: a name that is not valid UTF-8
keeps its raw bytes as surrogate escapes (``\\udcff``), which JSON carries as ``\\u`` escapes.
``mode`` is :func:`stat.S_IMODE` of the entry; ``content`` lists the data blobs whose
concatenation is the file.

:func:`decode_tree` accepts exactly what :func:`encode_tree` produces: any other field, a
missing one, a wrong type, an out-of-range number, unsorted or duplicate names, a name that
could escape the directory it belongs to (:func:`check_name`), or bytes that are not the
canonical encoding of what they decode to raise :class:`~lifeboat.store.errors.FormatError`.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from lifeboat.documents import canonical_json
from lifeboat.store.errors import FormatError

__all__ = [
    "BLOB_ID_BYTES",
    "MAX_NAME_BYTES",
    "MAX_TARGET_BYTES",
    "MAX_TREE_BYTES",
    "SPECIAL_TYPES",
    "TREE_FORMAT",
    "TREE_VERSION",
    "TREE_VERSION_PLAIN",
    "Node",
    "NodeType",
    "check_name",
    "decode_tree",
    "encode_tree",
]

TREE_FORMAT: Final = "lifeboat-tree"
TREE_VERSION: Final = 2
#: The version of a tree without special files (FIFOs, devices): what earlier releases wrote.
TREE_VERSION_PLAIN: Final = 1
#: The largest tree blob :func:`decode_tree` parses (a directory of roughly a million entries).
MAX_TREE_BYTES: Final = 256 << 20
#: The longest entry name, in file-system bytes (Linux allows 255; other systems a little more).
MAX_NAME_BYTES: Final = 1024
#: The longest symlink target, in file-system bytes (Linux ``PATH_MAX``).
MAX_TARGET_BYTES: Final = 4096
BLOB_ID_BYTES: Final = 32

_MAX_U64: Final = (1 << 64) - 1
_MIN_I64: Final = -(1 << 63)
_MAX_I64: Final = (1 << 63) - 1

NodeType = Literal["file", "dir", "symlink", "fifo", "chardev", "blockdev"]
#: Entry types that need tree version 2.
SPECIAL_TYPES: Final = frozenset({"fifo", "chardev", "blockdev"})
_MAX_U32: Final = (1 << 32) - 1

_FIELDS: Final[dict[str, frozenset[str]]] = {
    "file": frozenset({"name", "type", "mode", "mtime_ns", "size", "inode", "device", "content"}),
    "dir": frozenset({"name", "type", "mode", "mtime_ns", "subtree"}),
    "symlink": frozenset({"name", "type", "mode", "mtime_ns", "target"}),
    "fifo": frozenset({"name", "type", "mode", "mtime_ns"}),
    "chardev": frozenset({"name", "type", "mode", "mtime_ns", "major", "minor"}),
    "blockdev": frozenset({"name", "type", "mode", "mtime_ns", "major", "minor"}),
}


@dataclass(frozen=True)
class Node:
    """One directory entry of a snapshot.

    ``size``, ``inode``, ``device`` and ``content`` describe files (zero / empty otherwise);
    ``subtree`` is the tree blob id of a directory; ``target`` is the text of a symlink;
    ``major`` and ``minor`` are the device number of a character or block device.
    """

    name: str
    type: NodeType
    mode: int
    mtime_ns: int
    size: int = 0
    inode: int = 0
    device: int = 0
    content: tuple[bytes, ...] = ()
    subtree: bytes | None = None
    target: str | None = None
    major: int = 0
    minor: int = 0


def check_name(name: str) -> None:
    """Refuse a name that could escape its directory or that the file system cannot hold.

    Empty, ``.``, ``..``, a ``/`` or a NUL anywhere, a string that :func:`os.fsencode` cannot
    turn back into bytes, or more than :data:`MAX_NAME_BYTES` bytes: :class:`FormatError`.
    """
    if not isinstance(name, str):
        raise FormatError(f"tree entry name must be a string, not {type(name).__name__}")
    if name in ("", ".", ".."):
        raise FormatError(
            f"tree entry name {name!r} would escape its directory (path escape); "
            "the snapshot is damaged or hostile"
        )
    if "/" in name or "\0" in name:
        raise FormatError(
            f"tree entry name {name!r} contains '/' or NUL and would escape its directory "
            "(path escape); the snapshot is damaged or hostile"
        )
    raw = _fs_bytes(name, "tree entry name")
    if len(raw) > MAX_NAME_BYTES:
        raise FormatError(f"tree entry name is {len(raw)} bytes long; at most {MAX_NAME_BYTES} allowed")


def encode_tree(nodes: Iterable[Node]) -> bytes:
    """The canonical tree blob listing ``nodes`` (sorted by name; duplicate names refused)."""
    ordered = sorted(nodes, key=lambda node: node.name)
    for before, after in itertools.pairwise(ordered):
        if before.name == after.name:
            raise FormatError(f"two tree entries are named {before.name!r}")
    special = any(node.type in SPECIAL_TYPES for node in ordered)
    document = {
        "format": TREE_FORMAT,
        "version": TREE_VERSION if special else TREE_VERSION_PLAIN,
        "nodes": [_node_to_json(node) for node in ordered],
    }
    return canonical_json(document)


def decode_tree(data: bytes) -> list[Node]:
    """The nodes of a tree blob, in name order; :class:`FormatError` for anything malformed."""
    if len(data) > MAX_TREE_BYTES:
        raise FormatError(f"tree blob is {len(data)} bytes; at most {MAX_TREE_BYTES} allowed")
    try:
        document = json.loads(bytes(data).decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"tree blob is not canonical JSON: {exc}") from None
    if not isinstance(document, dict):
        raise FormatError("tree blob is not a JSON object")
    if document.get("format") != TREE_FORMAT:
        raise FormatError(f"not a tree blob (format {document.get('format')!r})")
    version = document.get("version")
    if version not in (TREE_VERSION_PLAIN, TREE_VERSION) or isinstance(version, bool):
        raise FormatError(
            f"tree blob version {version!r} is not supported (this Lifeboat reads versions "
            f"{TREE_VERSION_PLAIN} and {TREE_VERSION})"
            + (" (upgrade Lifeboat)" if isinstance(version, int) and version > TREE_VERSION else "")
        )
    if set(document) != {"format", "version", "nodes"}:
        raise FormatError(
            f"tree blob has unexpected fields {sorted(set(document) - {'format', 'version', 'nodes'})}"
        )
    raw_nodes = document["nodes"]
    if not isinstance(raw_nodes, list):
        raise FormatError("tree blob 'nodes' is not a list")
    nodes = [_node_from_json(raw, position) for position, raw in enumerate(raw_nodes)]
    for before, after in itertools.pairwise(nodes):
        if before.name >= after.name:
            what = "duplicate" if before.name == after.name else "unsorted"
            raise FormatError(f"tree blob has {what} entries {before.name!r} and {after.name!r}")
    special = any(node.type in SPECIAL_TYPES for node in nodes)
    if special != (version == TREE_VERSION):
        raise FormatError(
            f"tree blob version {version} "
            + ("lists special files (they need version 2)" if special else "lists no special file")
        )
    if canonical_json(document) != bytes(data):
        raise FormatError("tree blob is not in canonical form")
    return nodes


# --- helpers ---------------------------------------------------------------------------------


def _fs_bytes(text: str, what: str) -> bytes:
    try:
        return os.fsencode(text)
    except UnicodeError:
        raise FormatError(f"{what} {text!r} cannot be represented as a file-system name") from None


def _node_to_json(node: Node) -> dict[str, Any]:
    check_name(node.name)
    item: dict[str, Any] = {
        "name": node.name,
        "type": node.type,
        "mode": node.mode,
        "mtime_ns": node.mtime_ns,
    }
    if node.type == "file":
        item.update(
            size=node.size,
            inode=node.inode,
            device=node.device,
            content=[_blob_hex(blob_id) for blob_id in node.content],
        )
    elif node.type == "dir":
        if node.subtree is None:
            raise FormatError(f"directory {node.name!r} has no subtree")
        item["subtree"] = _blob_hex(node.subtree)
    elif node.type == "symlink":
        if node.target is None:
            raise FormatError(f"symlink {node.name!r} has no target")
        _check_target(node.target, node.name)
        item["target"] = node.target
    elif node.type in ("chardev", "blockdev"):
        item.update(major=node.major, minor=node.minor)
    elif node.type != "fifo":
        raise FormatError(f"tree entry {node.name!r} has unknown type {node.type!r}")
    _check_int(item["mode"], 0, 0o7777, "mode", node.name)
    _check_int(item["mtime_ns"], _MIN_I64, _MAX_I64, "mtime_ns", node.name)
    if node.type == "file":
        for field in ("size", "inode", "device"):
            _check_int(item[field], 0, _MAX_U64, field, node.name)
    if node.type in ("chardev", "blockdev"):
        for field in ("major", "minor"):
            _check_int(item[field], 0, _MAX_U32, field, node.name)
    return item


def _node_from_json(raw: object, position: int) -> Node:
    if not isinstance(raw, dict):
        raise FormatError(f"tree entry {position} is not a JSON object")
    node_type = raw.get("type")
    if not isinstance(node_type, str) or node_type not in _FIELDS:
        raise FormatError(f"tree entry {position} has unknown type {node_type!r}")
    name = raw.get("name")
    if not isinstance(name, str):
        raise FormatError(f"tree entry {position} has no name")
    check_name(name)
    if set(raw) != _FIELDS[node_type]:
        missing = sorted(_FIELDS[node_type] - set(raw))
        extra = sorted(set(raw) - _FIELDS[node_type])
        raise FormatError(f"tree entry {name!r} ({node_type}): missing fields {missing}, unexpected {extra}")
    mode = _check_int(raw["mode"], 0, 0o7777, "mode", name)
    mtime_ns = _check_int(raw["mtime_ns"], _MIN_I64, _MAX_I64, "mtime_ns", name)
    if node_type == "file":
        content = raw["content"]
        if not isinstance(content, list):
            raise FormatError(f"tree entry {name!r}: content is not a list")
        return Node(
            name=name,
            type="file",
            mode=mode,
            mtime_ns=mtime_ns,
            size=_check_int(raw["size"], 0, _MAX_U64, "size", name),
            inode=_check_int(raw["inode"], 0, _MAX_U64, "inode", name),
            device=_check_int(raw["device"], 0, _MAX_U64, "device", name),
            content=tuple(_blob_id(item, name) for item in content),
        )
    if node_type == "dir":
        return Node(
            name=name, type="dir", mode=mode, mtime_ns=mtime_ns, subtree=_blob_id(raw["subtree"], name)
        )
    if node_type == "fifo":
        return Node(name=name, type="fifo", mode=mode, mtime_ns=mtime_ns)
    if node_type in ("chardev", "blockdev"):
        return Node(
            name=name,
            type="chardev" if node_type == "chardev" else "blockdev",
            mode=mode,
            mtime_ns=mtime_ns,
            major=_check_int(raw["major"], 0, _MAX_U32, "major", name),
            minor=_check_int(raw["minor"], 0, _MAX_U32, "minor", name),
        )
    target = raw["target"]
    if not isinstance(target, str):
        raise FormatError(f"tree entry {name!r}: symlink target is not a string")
    _check_target(target, name)
    return Node(name=name, type="symlink", mode=mode, mtime_ns=mtime_ns, target=target)


def _check_int(value: object, low: int, high: int, field: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"tree entry {name!r}: {field} is not an integer")
    if not low <= value <= high:
        raise FormatError(f"tree entry {name!r}: {field} {value} is out of range")
    return value


def _check_target(target: str, name: str) -> None:
    raw = _fs_bytes(target, f"symlink {name!r} target")
    if not raw or b"\0" in raw or len(raw) > MAX_TARGET_BYTES:
        raise FormatError(f"symlink {name!r} has an empty, NUL-containing or over-long target")


def _blob_hex(blob_id: bytes) -> str:
    if not isinstance(blob_id, bytes) or len(blob_id) != BLOB_ID_BYTES:
        raise FormatError(f"blob id must be {BLOB_ID_BYTES} bytes")
    return blob_id.hex()


def _blob_id(value: object, name: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * BLOB_ID_BYTES:
        raise FormatError(f"tree entry {name!r}: blob id is not {2 * BLOB_ID_BYTES} hex digits")
    try:
        blob_id = bytes.fromhex(value)
    except ValueError:
        raise FormatError(f"tree entry {name!r}: blob id {value!r} is not hex") from None
    if blob_id.hex() != value:
        raise FormatError(f"tree entry {name!r}: blob id {value!r} is not lowercase hex")
    return blob_id
