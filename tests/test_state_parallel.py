"""Record snapshots made fast: leaves cut on worker processes, and state nodes in small packs.

The tree a snapshot makes must not depend on how it was made: leaf runs cut apart and joined
give :func:`prolly.build`'s nodes, the worker processes give the one-by-one reading's root, and
any line the workers do not take falls back to that reading (same tree, or the same error).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.errors import RecordError, UsageError
from lifeboat.state import parallel, prolly
from lifeboat.state import records as records_mod
from lifeboat.state import snapshots as state
from lifeboat.state.records import RecordSpec, open_source
from lifeboat.store import repository as repository_mod
from lifeboat.store.backends import open_backend
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.packs import BLOB_DATA, BLOB_STATE
from lifeboat.store.repository import Repository

SPEC = RecordSpec("key", ("balances.USDC", "balances.ETH"))
SHAPE = {"fanout": 8, "leaf_fanout": 3}


def _records(count: int, seed: int = 7) -> list[tuple[bytes, bytes, tuple[int, ...]]]:
    rng = random.Random(seed)
    keys = sorted({f"acct:{rng.getrandbits(64):016x}".encode() for _ in range(count)})
    return [(key, b"v" + key, (rng.randrange(10**6), rng.randrange(10**6))) for key in keys]


def _ledger(path: Path, count: int, *, seed: int = 11) -> Path:
    rng = random.Random(seed)
    keys = sorted({f"acct:0x{rng.getrandbits(160):040x}" for _ in range(count)})
    lines = []
    for key in keys:
        balances = {"USDC": str(rng.randrange(10**24)), "DAI": str(rng.randrange(10**20))}
        if rng.random() < 0.5:
            balances["ETH"] = str(rng.randrange(10**22))
        lines.append(json.dumps({"key": key, "kind": "account", "balances": balances}, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_leaf_runs_joined_give_the_built_tree() -> None:
    """Whatever the cuts (runs without a boundary, of one record, empty), the nodes are build's."""
    records = _records(600)
    built = prolly.build(records, sum_fields=2, **SHAPE)
    expected = {node.node_id: node.data for node in built}
    rng = random.Random(3)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(records)), rng.randrange(0, 40)))
        if rng.random() < 0.3:
            cuts += [cuts[-1]] if cuts else [5, 5]  # an empty run
            cuts.sort()
        pieces = [records[a:b] for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True)]
        runs = [prolly.leaf_run(piece, sum_fields=2, **SHAPE) for piece in pieces]
        joined = prolly.build_runs(runs, sum_fields=2, **SHAPE)
        nodes = {node.node_id: node.data for node in joined}
        assert joined.tree == built.tree
        assert nodes == expected


def test_a_leaf_run_starts_at_a_boundary() -> None:
    records = _records(200)
    run = prolly.leaf_run(records[17:], sum_fields=2, **SHAPE)
    assert run.leaves, "200 records with leaves of ~3 hold boundaries"
    first_leaf, _ = run.leaves[0]
    threshold = prolly.node.boundary_thresholds(8, 3)[0]
    assert prolly.node.hash_key(first_leaf.first_key) < threshold
    assert all(prolly.node.hash_key(key) >= threshold for key, _, _ in run.before)
    assert len(run.before) + sum(leaf.count for leaf, _ in run.leaves) + len(run.after) == 183


def test_a_leaf_that_does_not_start_a_node_is_refused() -> None:
    records = _records(200)
    threshold = prolly.node.boundary_thresholds(8, 3)[0]
    builder = prolly.Builder(sum_fields=2, **SHAPE)
    builder.add(records[0])
    # a leaf whose first key passes no boundary cannot follow open records
    inner = next(i for i in range(1, 200) if prolly.node.hash_key(records[i][0]) >= threshold)
    leaf = next(iter(prolly.build(records[inner : inner + 1], sum_fields=2, **SHAPE)))
    with pytest.raises(UsageError, match="start a node"):
        builder.add_leaf(leaf, records[inner][0])


def _serial_tree(path: Path) -> prolly.Tree:
    with open_source(str(path), SPEC) as source:
        built = prolly.build(((r.key, r.value, r.sums) for r in source), sum_fields=2, **SHAPE)
        for _ in built:
            pass
        return built.tree


def test_worker_processes_give_the_serial_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _ledger(tmp_path / "l.jsonl", 3000)
    monkeypatch.setattr(records_mod, "READ_CHUNK", 4096)  # many blocks, lines cut across them
    counted: list[int] = []
    with open_source(str(path), SPEC) as source:
        assert isinstance(source, records_mod.JsonLinesSource)
        runs = parallel.leaf_runs(source.blocks(), SPEC, workers=2, counted=counted, **SHAPE)
        joined = prolly.build_runs(runs, sum_fields=2, **SHAPE)
        for _ in joined:
            pass
        assert source.describe()["final_newline"] is True
    assert len(counted) > 20 and sum(counted) == 3000
    assert joined.tree == _serial_tree(path)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    stores = [open_backend(str(tmp_path / f"store{i}"), create=True) for i in range(5)]
    repo = Repository.init(stores, "pw", k=3, kdf=TEST_KDF)
    yield repo
    repo.close()


def _snapshot(repo: Repository, path: Path, name: str) -> state.SnapshotResult:
    with open_source(str(path), SPEC) as source:
        return state.snapshot_records(
            repo, source, SPEC, name=name, signing=state.repository_signing(repo), fanout=8, leaf_fanout=3
        )


def _parallel(monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    monkeypatch.setattr(records_mod, "READ_CHUNK", 8192)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel, "worker_count", lambda: 2 if on else 0)


@pytest.mark.parametrize(
    ("odd_line", "why"),
    [
        (None, "ordinary lines"),
        ('{"key":"%s","balances":{"USDC":123456789012345678901234567890123456789}}', "a sum beyond 64 bits"),
        ('{"key":"%s","balances.USDC":"7"}', "a dotted top-level name"),
        (None, "no worker can start"),
    ],
)
def test_snapshot_is_the_same_made_in_parallel(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch, odd_line: str | None, why: str
) -> None:
    path = _ledger(tmp_path / "l.jsonl", 2000)
    if odd_line is not None:
        lines = path.read_text().splitlines()
        key = json.loads(lines[1500])["key"]
        lines[1500] = odd_line % key
        path.write_text("\n".join(lines) + "\n")
    _parallel(monkeypatch, False)
    serial = _snapshot(repo, path, "serial")
    _parallel(monkeypatch, True)
    if why == "no worker can start":
        monkeypatch.setattr("sys.executable", str(tmp_path / "no-such-python"))
    made = _snapshot(repo, path, "parallel")
    assert made.snapshot.statement.root == serial.snapshot.statement.root, why
    assert made.snapshot.statement.count == 2000
    assert made.snapshot.statement.source["records"] == 2000
    assert made.written.nodes_new == 0
    assert made.written.nodes_known == serial.written.nodes_new + serial.written.nodes_known


def test_fallback_counts_nodes_once(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A late odd line: the nodes stored before it are the tree's own and are counted new once."""
    path = _ledger(tmp_path / "l.jsonl", 2000)
    lines = path.read_text().splitlines()
    key = json.loads(lines[1900])["key"]
    lines[1900] = json.dumps({"key": key, "balances": {"USDC": 2**100}})
    path.write_text("\n".join(lines) + "\n")
    _parallel(monkeypatch, True)
    made = _snapshot(repo, path, "late")
    _parallel(monkeypatch, False)
    again = _snapshot(repo, path, "again")
    assert again.snapshot.statement.root == made.snapshot.statement.root
    assert made.written.nodes_known == 0
    assert again.written.nodes_new == 0 and again.written.nodes_known == made.written.nodes_new


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not json", "line 1001 is not valid JSON"),
        ("", "line 1001 is blank"),
        ("[1]", "line 1001 is a list"),
    ],
)
def test_errors_name_the_line_as_the_serial_reading_does(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch, bad: str, message: str
) -> None:
    path = _ledger(tmp_path / "l.jsonl", 2000)
    lines = path.read_text().splitlines()
    lines[1000] = bad
    path.write_text("\n".join(lines) + "\n")
    _parallel(monkeypatch, False)
    with pytest.raises(RecordError) as serial:
        _snapshot(repo, path, "serial")
    _parallel(monkeypatch, True)
    with pytest.raises(RecordError) as made:
        _snapshot(repo, path, "parallel")
    assert str(made.value) == str(serial.value)
    assert message in str(made.value)


def test_keys_out_of_order_across_blocks(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _ledger(tmp_path / "l.jsonl", 2000)
    lines = path.read_text().splitlines()
    lines[1200], lines[1800] = lines[1800], lines[1200]
    path.write_text("\n".join(lines) + "\n")
    _parallel(monkeypatch, True)
    with pytest.raises(RecordError, match="line 1202: keys out of order"):
        _snapshot(repo, path, "parallel")


def test_state_nodes_go_to_small_packs_leaves_apart(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _ledger(tmp_path / "l.jsonl", 4000)
    _parallel(monkeypatch, False)
    _snapshot(repo, path, "packs")
    levels: dict[bytes, set[bool]] = {}
    sizes: dict[bytes, int] = {}
    for pack_id in {_pack_of(repo, node_id) for node_id in _tree_ids(repo)}:
        blobs = repo.load_pack(pack_id)
        sizes[pack_id] = sum(len(data) for data in blobs.values())
        levels[pack_id] = {prolly.decode_node(data).level > 0 for data in blobs.values()}
    assert len(sizes) > 2
    largest_node = max(len(data) for pack_id in sizes for data in repo.load_pack(pack_id).values())
    assert all(size < repository_mod.STATE_PACK_SIZE + largest_node for size in sizes.values())
    assert all(len(kinds) == 1 for kinds in levels.values()), "a pack mixes leaves and internal nodes"


def _pack_of(repo: Repository, blob_id: bytes) -> bytes:
    location = repo.index.lookup(blob_id)
    assert location is not None
    return location.pack


def _tree_ids(repo: Repository) -> list[bytes]:
    snap = state.find_state(repo, "latest", "packs")
    ids: list[bytes] = []
    pending = [snap.statement.root]
    while pending:
        node_id = pending.pop()
        ids.append(node_id)
        node = prolly.decode_node(repo.load_blob(node_id))
        pending.extend(child.node_id for child in node.children)
    return ids


def test_pack_sizes_per_blob_type(repo: Repository) -> None:
    with repo.writer() as writer:
        assert writer.pack_sizes[BLOB_DATA] == repo.config.pack_size
        assert writer.pack_sizes[BLOB_STATE] == repository_mod.STATE_PACK_SIZE
    with repo.writer(state_pack_size=64 << 20) as writer:
        assert writer.pack_sizes[BLOB_STATE] == repo.config.pack_size  # never above the config's


def test_pack_cache_keeps_bytes_not_packs(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repository_mod, "PACK_CACHE_BYTES", 3000)
    blobs = [bytes([i]) * 1000 for i in range(6)]
    with repo.writer(state_pack_size=1) as writer:  # one pack per blob
        ids = [writer.add_blob(BLOB_STATE, blob, bytes([i]) * 32)[0] for i, blob in enumerate(blobs)]
    for blob_id, blob in zip(ids, blobs, strict=True):
        assert repo.load_blob(blob_id) == blob
    assert 1 <= len(repo._pack_cache) <= 3
    assert repo._pack_cache_bytes <= 3000


class _Announced(prolly.MemorySource):
    """A node source that records what :func:`prolly.scan` announces and reads."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, bytes]] = []

    def get(self, node_id: bytes, /) -> bytes:
        self.events.append(("get", node_id))
        return super().get(node_id)

    def prefetch(self, node_id: bytes, /) -> None:
        self.events.append(("ahead", node_id))


def test_scan_announces_leaves_before_reading_them() -> None:
    records = _records(3000)
    source = _Announced()
    built = prolly.build(records, sum_fields=2, **SHAPE)
    leaves = set()
    for node in built:
        source.put(node)
        if node.level == 0:
            leaves.add(node.node_id)
    scanned = list(prolly.scan(source, built.tree.root))
    assert scanned == [(key, value) for key, value, _ in records]
    announced = [node_id for what, node_id in source.events if what == "ahead"]
    assert set(announced) == leaves and len(announced) == len(leaves)
    order = {event: number for number, event in enumerate(source.events)}
    for leaf in leaves:
        assert order[("ahead", leaf)] < order[("get", leaf)]
    first_leaf_read = min(order[("get", leaf)] for leaf in leaves)
    assert sum(1 for what, _ in source.events[:first_leaf_read] if what == "ahead") > 1


def test_repository_nodes_read_ahead(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _ledger(tmp_path / "l.jsonl", 3000)
    _parallel(monkeypatch, False)
    made = _snapshot(repo, path, "ahead")
    nodes = state.RepositoryNodes(repo)
    with open_source(str(path), SPEC) as source:
        expected = [(record.key, record.value) for record in source]
    assert list(prolly.scan(nodes, made.snapshot.statement.root)) == expected
    assert nodes._ahead, "the leaves' packs were asked for ahead"
