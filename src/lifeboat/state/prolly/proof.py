"""Proofs of one record (and of the totals at the root): making them, their JSON form, verifying them.

A proof carries, per level, the node's header fields and the sibling hashes of the entry's path
in the node's Merkle tree; :func:`verify` recomputes the root from them alone. The JSON form
(version 2) and the verification algorithm are specified, byte for byte, in docs/formats.md,
"Record snapshots, version 1".
"""

from __future__ import annotations

import base64
import bisect
import itertools
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from blake3 import blake3

from lifeboat.documents import canonical_json, check_fields, strict_json
from lifeboat.errors import InputError, LifeboatError, exact_bytes
from lifeboat.state.prolly.node import (
    HEADER,
    ID_BYTES,
    LANE_BITS,
    MAX_FANOUT,
    MAX_KEY_BYTES,
    MAX_LEVEL,
    MAX_SUM_FIELDS,
    MAX_VALUE_BYTES,
    MIN_FANOUT,
    NODE_LIMIT_FACTOR,
    NODE_VERSION,
    SUM_LIMIT,
    TAG_INNER,
    TAG_INTERNAL,
    TAG_LEAF,
    TAG_LEN,
    TAG_NODE,
    U32,
    NodeReader,
    NodeSource,
    ParsedNode,
    Record,
    add_sums_checked,
    empty_root,
    high_bits,
    merkle_root,
    show_key,
    sum_width,
    unpack_sums,
)

PROOF_FORMAT: Final = "lifeboat-prolly-proof"
PROOF_VERSION: Final = 2
#: The proof versions this Lifeboat has written and no longer reads (make the proof again).
RETIRED_PROOF_VERSIONS: Final = frozenset({1})


#: The largest proof JSON :meth:`Proof.from_json` reads (two records of the largest value, in hex).
MAX_PROOF_BYTES: Final = 4 * MAX_VALUE_BYTES + (1 << 20)


#: The largest byte length of a sibling's count and of each of its sums in the compact form.
_COUNT_BYTES: Final = 8
_SUM_BYTES: Final = LANE_BITS // 8
#: At most this many siblings in one step (a node of 4 * 4096 entries has a Merkle tree 14 deep).
_MAX_STEP_SIBLINGS: Final = 32


class ProofError(LifeboatError):
    """A proof that does not verify against the given root, or that is malformed."""


# --- proofs -----------------------------------------------------------------------------------


class Sibling(NamedTuple):
    """A sibling on a proof path: its hash, and the number of records and their sums below it."""

    hash: bytes
    record_count: int
    sums: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ProofStep:
    """One node on a proof path: its entry count, the entry's index, and the siblings in it.

    ``first_key`` is the first key of the child the path came from (internal nodes only).
    """

    entries: int
    index: int
    siblings: tuple[Sibling, ...]
    first_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class RecordPath:
    """A record and its path from its leaf (first step) to the root (last step)."""

    record: Record
    steps: tuple[ProofStep, ...]


@dataclass(frozen=True, slots=True)
class Proof:
    """That ``key`` is in the tree (one path) or not (the paths of its neighbours)."""

    key: bytes
    present: bool
    fanout: int
    leaf_fanout: int
    sum_fields: int
    paths: tuple[RecordPath, ...]

    def to_json(self) -> bytes:
        """The proof as canonical JSON (text or hex bytes, base64url hashes, decimal counts and sums)."""
        document = {
            "format": PROOF_FORMAT,
            "version": PROOF_VERSION,
            "kind": "inclusion" if self.present else "absence",
            "key": _bytes_to_json(self.key),
            "fanout": self.fanout,
            "leaf_fanout": self.leaf_fanout,
            "sum_fields": self.sum_fields,
            "records": [_path_to_json(path) for path in self.paths],
        }
        return canonical_json(document)

    @classmethod
    def from_json(cls, data: bytes | str) -> Proof:
        """Parse :meth:`to_json` output; :class:`ProofError` for anything else."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        if len(data) > MAX_PROOF_BYTES:
            raise ProofError(f"the proof is {len(data)} bytes; at most {MAX_PROOF_BYTES} allowed")
        body = strict_json(data, "the proof", ProofError)
        if not isinstance(body, dict):
            raise ProofError("the proof is not a JSON object")
        if body.get("format") != PROOF_FORMAT:
            raise ProofError(f"not a Lifeboat record proof (format {body.get('format')!r})")
        version = body.get("version")
        if type(version) is int and version in RETIRED_PROOF_VERSIONS:
            raise ProofError(
                f"proof version {version} is an older format this Lifeboat no longer reads (it reads "
                f"version {PROOF_VERSION}); make the proof again with `lifeboat state prove`"
            )
        if type(version) is not int or version != PROOF_VERSION:
            raise ProofError(
                f"proof version {version!r} is not supported (this Lifeboat reads version {PROOF_VERSION})"
            )
        check_fields(body, _PROOF_FIELDS, "the proof", ProofError)
        kind = body["kind"]
        if kind not in ("inclusion", "absence"):
            raise ProofError(f"the proof has unknown kind {kind!r}")
        fanout = _json_int(body["fanout"], "fanout", MAX_FANOUT)
        leaf_fanout = _json_int(body["leaf_fanout"], "leaf_fanout", MAX_FANOUT)
        sum_fields = _json_int(body["sum_fields"], "sum_fields", MAX_SUM_FIELDS)
        records = body["records"]
        if not isinstance(records, list) or len(records) > 2:
            raise ProofError("the proof's records must be a list of at most two")
        paths = tuple(_path_from_json(item, sum_fields, number) for number, item in enumerate(records))
        return cls(
            _json_bytes(body["key"], "key"), kind == "inclusion", fanout, leaf_fanout, sum_fields, paths
        )


_PROOF_FIELDS: Final = frozenset(
    {"format", "version", "kind", "key", "fanout", "leaf_fanout", "sum_fields", "records"}
)
_RECORD_FIELDS: Final = frozenset({"key", "value", "sums", "path"})


def _path_to_json(path: RecordPath) -> dict[str, Any]:
    steps: list[list[Any]] = []
    for step in path.steps:
        siblings = _b64(b"".join(_sibling_bytes(sibling) for sibling in step.siblings))
        if step.first_key is None:
            steps.append([step.entries, step.index, siblings])
        else:
            steps.append([step.entries, step.index, _bytes_to_json(step.first_key), siblings])
    record = path.record
    return {
        "key": _bytes_to_json(record.key),
        "value": _bytes_to_json(record.value),
        "sums": list(map(str, record.sums)),
        "path": steps,
    }


def _sibling_bytes(sibling: Sibling) -> bytes:
    """A sibling in a proof: its hash, then its count and each sum as a length byte and minimal
    big-endian bytes (no leading zero byte; zero is the length byte 0 alone)."""
    parts = [sibling.hash]
    for number in (sibling.record_count, *sibling.sums):
        size = (number.bit_length() + 7) >> 3
        parts.append(bytes((size,)))
        parts.append(number.to_bytes(size, "big"))
    return b"".join(parts)


def _siblings_from_bytes(data: bytes, sum_fields: int, where: str) -> tuple[Sibling, ...]:
    """The inverse of :func:`_sibling_bytes` over a step's concatenated siblings, accepting only
    the one encoding it writes."""
    siblings: list[Sibling] = []
    position = 0
    end = len(data)
    while position < end:
        if len(siblings) == _MAX_STEP_SIBLINGS:
            raise ProofError(f"{where} has more than {_MAX_STEP_SIBLINGS} siblings")
        digest = data[position : position + ID_BYTES]
        position += ID_BYTES
        numbers = []
        for lane in range(sum_fields + 1):
            size = data[position] if position < end else 0
            raw = data[position + 1 : position + 1 + size]
            if position >= end or len(raw) != size:
                raise ProofError(
                    f"{where}: a sibling is cut short (it needs a hash, a count and {sum_fields} sums)"
                )
            limit = _SUM_BYTES if lane else _COUNT_BYTES
            if size > limit or (size and raw[0] == 0):
                raise ProofError(
                    f"{where}: a sibling's {'sum' if lane else 'count'} must be at most {limit} bytes, "
                    "big-endian without a leading zero byte"
                )
            numbers.append(int.from_bytes(raw, "big"))
            position += 1 + size
        siblings.append(Sibling(digest, numbers[0], tuple(numbers[1:])))
    return tuple(siblings)


def _path_from_json(item: object, sum_fields: int, number: int) -> RecordPath:
    what = f"proof record {number}"
    if not isinstance(item, dict):
        raise ProofError(f"{what} is not a JSON object")
    if item.keys() != _RECORD_FIELDS:
        check_fields(item, _RECORD_FIELDS, what, ProofError)
    sums = item["sums"]
    if not isinstance(sums, list) or len(sums) != sum_fields:
        raise ProofError(f"{what} must have {sum_fields} sums")
    record = Record(
        _json_bytes(item["key"], f"{what} key"),
        _json_bytes(item["value"], f"{what} value"),
        tuple(_json_decimal(value, f"{what} sum") for value in sums),
    )
    raw_steps = item["path"]
    if not isinstance(raw_steps, list) or not 1 <= len(raw_steps) <= MAX_LEVEL + 1:
        raise ProofError(f"{what} path must be a non-empty list")
    steps = []
    for level, raw in enumerate(raw_steps):
        where = f"{what} level {level}"
        size = 4 if level else 3
        if type(raw) is not list or len(raw) != size:
            shape = "[entries, index, first_key, siblings]" if level else "[entries, index, siblings]"
            raise ProofError(f"{where} must be a list {shape}")
        encoded = raw[-1]
        try:
            blob = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            canonical = _b64(blob) == encoded
        except (TypeError, ValueError):
            canonical = False
        if type(encoded) is not str or not canonical:
            raise ProofError(f"{where}: the siblings must be one string of unpadded base64url")
        steps.append(
            ProofStep(
                _json_int(raw[0], f"{where} entries", NODE_LIMIT_FACTOR * MAX_FANOUT),
                _json_int(raw[1], f"{where} index", NODE_LIMIT_FACTOR * MAX_FANOUT),
                _siblings_from_bytes(blob, sum_fields, where),
                _json_bytes(raw[2], f"{where} first_key") if level else None,
            )
        )
    return RecordPath(record, tuple(steps))


def _json_int(value: object, what: str, limit: int) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        raise ProofError(f"the proof's {what} must be an integer from 0 to {limit}")
    return value


def _json_decimal(value: object, what: str) -> int:
    if (
        type(value) is not str
        or not 0 < len(value) <= 80
        or not value.isascii()
        or not value.isdigit()
        or (value[0] == "0" and value != "0")
    ):
        raise ProofError(f"the proof's {what} must be a decimal string without leading zeros")
    return int(value)


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _bytes_to_json(data: bytes) -> str | dict[str, str]:
    """A key or value: its text when it is UTF-8, else ``{"hex": ...}``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": data.hex()}


def _json_bytes(value: object, what: str) -> bytes:
    """The inverse of :func:`_bytes_to_json`, accepting only the one form it writes."""
    if type(value) is str:
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape
            raise ProofError(f"the proof's {what} is not valid text") from None
    if type(value) is dict and value.keys() == {"hex"} and type(value["hex"]) is str:
        try:
            raw = bytes.fromhex(value["hex"])
        except ValueError:
            pass
        else:
            if raw.hex() == value["hex"]:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return raw
                raise ProofError(f"the proof's {what} is UTF-8, so it must be given as text, not hex")
    raise ProofError(f'the proof\'s {what} must be text, or {{"hex": lowercase hex}} when it is not UTF-8')


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """What a proof showed about the tree under ``root``.

    ``record`` when ``present``; otherwise ``before`` and ``after`` are the neighbours of the
    missing key (None at an end of the tree). ``position`` is the record's index in key order
    (or where the key would go); ``count`` and ``totals`` are the root's.
    """

    root: bytes
    key: bytes
    present: bool
    record: Record | None
    before: Record | None
    after: Record | None
    position: int
    count: int
    totals: tuple[int, ...]


class Prover:
    """Makes proofs against one root, keeping the nodes it has read (many proofs share them)."""

    def __init__(self, source: NodeSource, root: bytes) -> None:
        self._reader = NodeReader(source, root)

    def prove(self, key: bytes) -> Proof:
        """A proof that ``key`` is in the tree (its record) or not (its neighbours)."""
        if type(key) is not bytes:
            raise InputError(f"a key must be bytes, not {type(key).__name__}")
        reader = self._reader
        root = reader.root.node
        node = root
        offset = 0
        while node.level > 0:
            index = max(bisect.bisect_right([child.first_key for child in node.children], key) - 1, 0)
            offset += sum(child.record_count for child in node.children[:index])
            node = reader.child(node, node.children[index], keep=True).node
        index = bisect.bisect_left([record.key for record in node.records], key)
        position = offset + index
        present = index < len(node.records) and node.records[index].key == key
        neighbours = [at for at in (position - 1, position) if 0 <= at < root.count]
        positions = [position] if present else neighbours
        paths = tuple(self._path(at) for at in positions)
        return Proof(key, present, reader.fanout, reader.leaf_fanout, reader.sum_fields, paths)

    def _path(self, position: int) -> RecordPath:
        reader = self._reader
        parsed = reader.root
        chosen: list[tuple[ParsedNode, int, bytes | None]] = []
        while parsed.node.level > 0:
            node = parsed.node
            starts = list(itertools.accumulate(child.record_count for child in node.children))
            index = bisect.bisect_right(starts, position)
            if index:
                position -= starts[index - 1]
            chosen.append((parsed, index, node.children[index].first_key))
            parsed = reader.child(node, node.children[index], keep=True)
        chosen.append((parsed, position, None))
        record = parsed.node.records[position]
        steps = [
            ProofStep(len(parsed.hashes), index, self._siblings(parsed, index), first_key)
            for parsed, index, first_key in reversed(chosen)
        ]
        return RecordPath(record, tuple(steps))

    def _siblings(self, parsed: ParsedNode, index: int) -> tuple[Sibling, ...]:
        if parsed.layers is None:
            parsed.layers = []
            merkle_root(parsed.hashes, parsed.packs, sum_width(self._reader.sum_fields), parsed.layers)
        siblings = []
        for hashes, packs in parsed.layers:
            other = index ^ 1
            if other < len(hashes):
                count, sums = unpack_sums(packs[other], self._reader.sum_fields)
                siblings.append(Sibling(hashes[other], count, sums))
            index >>= 1
        return tuple(siblings)


def prove(source: NodeSource, root: bytes, key: bytes) -> Proof:
    """A proof that ``key`` is in the tree under ``root``, or that it is not."""
    return Prover(source, root).prove(key)


def verify(proof: Proof, root: bytes, *, totals: tuple[int, ...] | None = None) -> VerifiedProof:
    """Check ``proof`` against ``root`` alone; :class:`ProofError` unless it holds.

    Every path must lead to ``root``; sums are recomputed at every step; the root's totals
    are returned, and must equal ``totals`` when given. An absence proof must show the
    records just before and after the key (adjacent positions), or the one end record, or
    the empty tree.
    """
    root = exact_bytes(root, ID_BYTES, "a prolly root")
    if not isinstance(proof, Proof):
        raise ProofError(f"expected a Proof, not {type(proof).__name__}")
    fanout, leaf_fanout, sum_fields, key = proof.fanout, proof.leaf_fanout, proof.sum_fields, proof.key
    for name, value in (("fanout", fanout), ("leaf fanout", leaf_fanout)):
        if type(value) is not int or not MIN_FANOUT <= value <= MAX_FANOUT:
            raise ProofError(f"the proof has {name} {value!r}, outside {MIN_FANOUT}..{MAX_FANOUT}")
    if type(sum_fields) is not int or not 0 <= sum_fields <= MAX_SUM_FIELDS:
        raise ProofError(f"the proof has {sum_fields!r} sum fields, outside 0..{MAX_SUM_FIELDS}")
    if type(key) is not bytes:
        raise ProofError("the proof's key must be bytes")
    if not isinstance(proof.paths, tuple) or len(proof.paths) > 2:
        raise ProofError("a proof holds at most two record paths")
    results = [_verify_path(path, fanout, leaf_fanout, sum_fields) for path in proof.paths]
    for node_id, _position, _total in results:
        if node_id != root:
            raise ProofError(
                f"the proof leads to root {node_id.hex()}, not {root.hex()}: it belongs to another "
                "snapshot, or a record, sum, sibling or position in it was altered"
            )
    if results:
        total = results[0][2]
        if any(result[2] != total for result in results):
            raise ProofError("the proof's paths disagree about the root's totals")
        count, root_totals = unpack_sums(total, sum_fields)
    else:
        if root != empty_root(fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=sum_fields):
            raise ProofError(f"the proof shows an empty tree, but {root.hex()} is not the empty root")
        count, root_totals = 0, (0,) * sum_fields
    if totals is not None and tuple(totals) != root_totals:
        raise ProofError(f"the root's totals are {list(root_totals)}, not the expected {list(totals)}")
    records = [path.record for path in proof.paths]
    positions = [result[1] for result in results]
    before: Record | None = None
    after: Record | None = None
    if proof.present:
        if len(records) != 1 or records[0].key != key:
            raise ProofError(f"an inclusion proof must hold exactly the record for {show_key(key)}")
        return VerifiedProof(root, key, True, records[0], None, None, positions[0], count, root_totals)
    if len(records) == 2:
        before, after = records
        if not before.key < key < after.key:
            raise ProofError(f"the absence proof's records do not surround {show_key(key)}")
        if positions[1] != positions[0] + 1:
            raise ProofError(
                f"the absence proof's records are at positions {positions[0]} and {positions[1]}, not adjacent"
            )
        position = positions[1]
    elif len(records) == 1:
        (record,) = records
        if key < record.key:
            after, position = record, 0
            if positions[0] != 0:
                raise ProofError(f"the absence proof's record is at position {positions[0]}, not the first")
        elif record.key < key:
            before, position = record, count
            if positions[0] != count - 1:
                raise ProofError(f"the absence proof's record is at position {positions[0]}, not the last")
        else:
            raise ProofError("an absence proof holds the record it says is absent")
    else:
        position = 0
    return VerifiedProof(root, key, False, None, before, after, position, count, root_totals)


def _verify_path(path: RecordPath, fanout: int, leaf_fanout: int, sum_fields: int) -> tuple[bytes, int, int]:
    """The root a path leads to, the record's position, and S of the root."""
    if type(path) is not RecordPath or type(path.record) is not Record:
        raise ProofError("a proof path must be a RecordPath holding a Record")
    key, value, sums = path.record
    if type(key) is not bytes or type(value) is not bytes:
        raise ProofError("the proof's record key and value must be bytes")
    if len(key) > MAX_KEY_BYTES or len(value) > MAX_VALUE_BYTES:
        raise ProofError(f"the proof's record key or value is too long ({show_key(key)})")
    if type(sums) is not tuple or len(sums) != sum_fields:
        raise ProofError(f"the proof's record must have {sum_fields} sums")
    combined = 0
    packed = 1
    for item in sums:
        if type(item) is not int or not 0 <= item < SUM_LIMIT:
            raise ProofError(f"the proof's record sum {item!r} is not an integer from 0 to 2**128 - 1")
        combined = (combined << 128) | item
        packed = (packed << LANE_BITS) | item
    hash_of = blake3
    join = b"".join
    digest: bytes = hash_of(
        join(
            (
                TAG_LEN.pack(TAG_LEAF, len(key)),
                key,
                U32.pack(len(value)),
                value,
                combined.to_bytes(16 * sum_fields),
            )
        )
    ).digest()
    width = sum_width(sum_fields)
    shift = LANE_BITS * sum_fields
    high = high_bits(sum_fields)
    limits = (NODE_LIMIT_FACTOR * leaf_fanout, NODE_LIMIT_FACTOR * fanout)
    encoded = packed.to_bytes(width, "big")
    steps = path.steps
    if type(steps) is not tuple or not 1 <= len(steps) <= MAX_LEVEL + 1:
        raise ProofError(f"a proof path must have from 1 to {MAX_LEVEL + 1} steps")
    top = len(steps) - 1
    position = 0
    for level, step in enumerate(steps):
        if type(step) is not ProofStep:
            raise ProofError("a proof path step must be a ProofStep")
        if level:
            first_key = step.first_key
            if type(first_key) is not bytes or len(first_key) > MAX_KEY_BYTES:
                raise ProofError(f"proof level {level} lacks the first key of the node below")
            if not (first_key == key if position == 0 else first_key < key):
                raise ProofError(
                    f"proof level {level}: the first key below does not fit the record's position"
                )
            digest = hash_of(
                join((TAG_LEN.pack(TAG_INTERNAL, len(first_key)), first_key, digest, encoded))
            ).digest()
        elif step.first_key is not None:
            raise ProofError("the leaf level of a proof has no first key")
        entries, index, siblings = step.entries, step.index, step.siblings
        if (
            type(entries) is not int
            or type(index) is not int
            or not 0 <= index < entries <= limits[level > 0]
        ):
            raise ProofError(f"proof level {level}: index {index!r} of {entries!r} entries is out of range")
        if level == top and level and entries < 2:
            raise ProofError("the proof's root has one entry; it is not a canonical root")
        if type(siblings) is not tuple:
            raise ProofError(f"proof level {level}: siblings must be a tuple")
        used = 0
        size = entries
        try:
            # The record's position adds up the counts of the left siblings, read from the very
            # bytes that are hashed, so no other reading of a sibling's numbers can pass.
            while size > 1:
                if index & 1 or index + 1 < size:
                    other_hash, count, other_sums = siblings[used]
                    used += 1
                    if len(other_hash) != ID_BYTES or len(other_sums) != sum_fields:
                        raise ProofError(f"proof level {level}: a sibling needs a hash and {sum_fields} sums")
                    other = count
                    for item in other_sums:
                        other = (other << LANE_BITS) | item
                    other_encoded = other.to_bytes(width, "big")
                    if index & 1:
                        position += other >> shift
                        digest = hash_of(
                            join((TAG_INNER, other_hash, other_encoded, digest, encoded))
                        ).digest()
                    else:
                        digest = hash_of(
                            join((TAG_INNER, digest, encoded, other_hash, other_encoded))
                        ).digest()
                    if (packed | other) & high:
                        added = add_sums_checked(packed, other, high, sum_fields)
                        if added is None:
                            raise ProofError(f"proof level {level}: the sums overflow")
                        packed = added
                    else:
                        packed += other
                    encoded = packed.to_bytes(width, "big")
                index >>= 1
                size = (size + 1) >> 1
        except (TypeError, ValueError, OverflowError, IndexError):
            raise ProofError(
                f"proof level {level}: a sibling is missing or malformed (a hash, a count and {sum_fields} sums)"
            ) from None
        if used != len(siblings):
            raise ProofError(f"proof level {level} has {len(siblings) - used} siblings too many")
        digest = hash_of(
            join(
                (
                    TAG_NODE,
                    HEADER.pack(NODE_VERSION, level, fanout, leaf_fanout, sum_fields, entries),
                    encoded,
                    digest,
                )
            )
        ).digest()
    return digest, position, packed
