"""Tests of the forget retention policy (lifeboat.snapshot.retention): restic semantics and properties."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeboat.errors import InputError, UsageError
from lifeboat.snapshot.retention import (
    EMPTY_POLICY_MESSAGE,
    RetentionPolicy,
    SnapshotRef,
    apply_policy,
    format_duration,
    parse_duration,
)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def snap(ident: str, when: str, *, tags: tuple[str, ...] = (), group: str = "") -> SnapshotRef:
    return SnapshotRef(ident, datetime.fromisoformat(when).replace(tzinfo=UTC), frozenset(tags), group)


def kept(decision_snapshots: list[SnapshotRef]) -> list[str]:
    return [s.id for s in decision_snapshots]


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1y2m3d4h", timedelta(days=365 + 60 + 3, hours=4)),
        ("4h3d", timedelta(days=3, hours=4)),
        ("36h", timedelta(hours=36)),
        ("1d1d", timedelta(days=2)),
        (" 7d ", timedelta(days=7)),
        ("0d", timedelta(0)),
        ("2y", timedelta(days=730)),
        ("1m", timedelta(days=30)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "5", "d", "1w", "1.5d", "-1d", "+1d", "1 d", "1D", "1d 2h", "1dh", "1M", "٣d", "x"]
)
def test_parse_duration_refuses_junk(text: str) -> None:
    with pytest.raises(InputError, match="duration"):
        parse_duration(text)


def test_parse_duration_refuses_overflow() -> None:
    with pytest.raises(InputError, match="too long"):
        parse_duration("99999999999y")


def test_parse_duration_truncates_long_junk_in_message() -> None:
    with pytest.raises(InputError) as caught:
        parse_duration("x" * 500)
    assert len(str(caught.value)) < 200


@given(st.integers(0, 10**5), st.integers(0, 23))
def test_format_duration_round_trips(days: int, hours: int) -> None:
    duration = timedelta(days=days, hours=hours)
    assert parse_duration(format_duration(duration)) == duration


def test_format_duration_with_minutes_falls_back() -> None:
    assert format_duration(timedelta(minutes=90)) == "1:30:00"
    assert format_duration(timedelta(0)) == "0h"


# --- policy values ----------------------------------------------------------------------------


def test_empty_policy_is_refused() -> None:
    assert RetentionPolicy().empty()
    assert RetentionPolicy(within=timedelta(0)).empty()
    assert not RetentionPolicy(last=1).empty()
    assert not RetentionPolicy(yearly=-1).empty()
    assert not RetentionPolicy(within=timedelta(hours=1)).empty()
    assert not RetentionPolicy(tags=frozenset({"x"})).empty()
    with pytest.raises(UsageError) as caught:
        apply_policy([snap("a", "2024-01-01")], RetentionPolicy(), now=NOW)
    assert str(caught.value) == EMPTY_POLICY_MESSAGE
    with pytest.raises(UsageError, match="refusing to forget every snapshot"):
        apply_policy([], RetentionPolicy(within=timedelta(0)), now=NOW)


@pytest.mark.parametrize(
    "changes",
    [{"last": -2}, {"daily": -5}, {"weekly": True}, {"within": timedelta(days=-1)}, {"tags": "abc"}],
)
def test_bad_policy_values_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        RetentionPolicy(**changes)  # type: ignore[arg-type]


def test_policy_describe() -> None:
    policy = RetentionPolicy(
        last=3, daily=7, yearly=-1, within=timedelta(days=30), tags=frozenset({"b", "a"})
    )
    assert policy.describe() == (
        "keep 3 last, 7 daily, all yearly snapshots; all within 30d of the newest; every snapshot tagged a, b"
    )
    assert RetentionPolicy().describe() == "keep nothing (empty policy)"


def test_tags_accept_any_iterable() -> None:
    policy = RetentionPolicy(tags={"x"})  # type: ignore[arg-type]
    assert policy.tags == frozenset({"x"})
    assert hash(policy) == hash(RetentionPolicy(tags=frozenset({"x"})))


def test_snapshot_time_must_be_aware_and_is_normalised_to_utc() -> None:
    with pytest.raises(InputError, match="time zone"):
        SnapshotRef("a", datetime(2024, 1, 1))
    east = timezone(timedelta(hours=5))
    ref = SnapshotRef("a", datetime(2024, 1, 1, 2, 0, tzinfo=east))
    assert ref.time == datetime(2023, 12, 31, 21, 0, tzinfo=UTC)
    assert ref.time.tzinfo is UTC


def test_now_must_be_aware_and_ids_unique() -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        apply_policy([], RetentionPolicy(last=1), now=datetime(2024, 1, 1))
    with pytest.raises(InputError, match="listed twice"):
        apply_policy(
            [snap("a", "2024-01-01"), snap("a", "2024-01-02", group="g")], RetentionPolicy(last=1), now=NOW
        )


# --- semantics --------------------------------------------------------------------------------


def test_no_snapshots() -> None:
    decision = apply_policy([], RetentionPolicy(last=3), now=NOW)
    assert decision.keep == [] and decision.forget == [] and decision.reasons == {}


def test_keep_last() -> None:
    snapshots = [snap(f"s{i}", f"2024-05-{i:02d}T10:00") for i in range(1, 8)]
    decision = apply_policy(snapshots, RetentionPolicy(last=3), now=NOW)
    assert kept(decision.keep) == ["s7", "s6", "s5"]
    assert kept(decision.forget) == ["s4", "s3", "s2", "s1"]
    assert decision.reasons == {"s7": ["last"], "s6": ["last"], "s5": ["last"]}


def test_keep_daily_keeps_newest_of_each_day_and_the_oldest_when_unfilled() -> None:
    snapshots = [
        snap("d3-late", "2024-05-03T23:00"),
        snap("d3-early", "2024-05-03T01:00"),
        snap("d2", "2024-05-02T12:00"),
        snap("d1-late", "2024-05-01T18:00"),
        snap("d1-early", "2024-05-01T06:00"),
    ]
    filled = apply_policy(snapshots, RetentionPolicy(daily=2), now=NOW)
    assert kept(filled.keep) == ["d3-late", "d2"]
    assert filled.reasons == {"d3-late": ["daily 2024-05-03"], "d2": ["daily 2024-05-02"]}

    # Five days asked for, three exist: the newest of each day, plus the oldest snapshot (restic).
    unfilled = apply_policy(snapshots, RetentionPolicy(daily=5), now=NOW)
    assert kept(unfilled.keep) == ["d3-late", "d2", "d1-late", "d1-early"]
    assert unfilled.reasons["d1-early"] == ["oldest daily 2024-05-01"]
    assert kept(unfilled.forget) == ["d3-early"]

    # Exactly filled at the last snapshot: nothing extra.
    exact = apply_policy(snapshots, RetentionPolicy(daily=3), now=NOW)
    assert kept(exact.keep) == ["d3-late", "d2", "d1-late"]


def test_days_are_utc_days() -> None:
    east = timezone(timedelta(hours=9))
    # Both are on 2024-05-02 in Tokyo but on different UTC days.
    first = SnapshotRef("a", datetime(2024, 5, 2, 8, 0, tzinfo=east))  # 2024-05-01T23:00Z
    second = SnapshotRef("b", datetime(2024, 5, 2, 10, 0, tzinfo=east))  # 2024-05-02T01:00Z
    decision = apply_policy([first, second], RetentionPolicy(daily=2), now=NOW)
    assert decision.reasons == {"b": ["daily 2024-05-02"], "a": ["daily 2024-05-01"]}


def test_hourly_weekly_monthly_yearly_periods() -> None:
    snapshots = [
        snap("a", "2025-01-02T10:30"),
        snap("b", "2025-01-02T10:05"),
        snap("c", "2024-12-30T09:00"),  # ISO week 2025-W01
        snap("d", "2024-12-29T09:00"),  # ISO week 2024-W52
        snap("e", "2024-11-15T09:00"),
        snap("f", "2023-03-01T00:00"),
    ]
    weekly = apply_policy(snapshots, RetentionPolicy(weekly=2), now=NOW.replace(year=2025))
    assert weekly.reasons == {"a": ["weekly 2025-W01"], "d": ["weekly 2024-W52"]}
    hourly = apply_policy(snapshots, RetentionPolicy(hourly=2), now=NOW.replace(year=2025))
    assert hourly.reasons == {"a": ["hourly 2025-01-02 10:00"], "c": ["hourly 2024-12-30 09:00"]}
    monthly = apply_policy(snapshots, RetentionPolicy(monthly=3), now=NOW.replace(year=2025))
    assert monthly.reasons == {
        "a": ["monthly 2025-01"],
        "c": ["monthly 2024-12"],
        "e": ["monthly 2024-11"],
    }
    yearly = apply_policy(snapshots, RetentionPolicy(yearly=10), now=NOW.replace(year=2025))
    assert yearly.reasons == {
        "a": ["yearly 2025"],
        "c": ["yearly 2024"],
        "f": ["yearly 2023"],
    }


def test_minus_one_keeps_every_period() -> None:
    snapshots = [
        snap(f"s{i}", f"2024-{m:02d}-{d:02d}") for i, (m, d) in enumerate([(1, 1), (1, 5), (2, 1), (3, 9)])
    ]
    decision = apply_policy(snapshots, RetentionPolicy(monthly=-1), now=NOW)
    assert kept(decision.keep) == ["s3", "s2", "s1", "s0"]
    assert decision.reasons["s0"] == ["oldest monthly 2024-01"]
    assert kept(apply_policy(snapshots, RetentionPolicy(last=-1), now=NOW).keep) == ["s3", "s2", "s1", "s0"]


def test_reasons_accumulate_in_rule_order() -> None:
    snapshots = [snap("new", "2024-05-31T10:00", tags=("pin", "monthly-job")), snap("old", "2024-04-01")]
    policy = RetentionPolicy(
        last=1, daily=1, monthly=1, within=timedelta(days=1), tags=frozenset({"pin", "monthly-job", "x"})
    )
    decision = apply_policy(snapshots, policy, now=NOW)
    assert decision.reasons == {
        "new": ["tag monthly-job", "tag pin", "within 1d", "last", "daily 2024-05-31", "monthly 2024-05"],
    }
    assert kept(decision.forget) == ["old"]


def test_within_is_anchored_at_the_newest_snapshot_not_now() -> None:
    snapshots = [snap("a", "2024-01-10T00:00"), snap("b", "2024-01-08T00:01"), snap("c", "2024-01-07T00:00")]
    # Backups stopped months before NOW; "within 2d" still keeps the last two days of history.
    decision = apply_policy(snapshots, RetentionPolicy(within=parse_duration("2d")), now=NOW)
    assert kept(decision.keep) == ["a", "b"]
    assert decision.reasons["a"] == ["within 2d"]
    # The boundary itself is outside (strictly newer than latest - within).
    boundary = [snap("a", "2024-01-10T00:00"), snap("b", "2024-01-08T00:00")]
    assert kept(apply_policy(boundary, RetentionPolicy(within=timedelta(days=2)), now=NOW).keep) == ["a"]


def test_within_ignores_snapshots_from_the_future() -> None:
    snapshots = [snap("future", "2030-01-01"), snap("a", "2024-05-30"), snap("b", "2024-05-01")]
    decision = apply_policy(snapshots, RetentionPolicy(within=timedelta(days=3)), now=NOW)
    assert kept(decision.keep) == ["future", "a"]
    only_future = [snap("f1", "2030-01-01"), snap("f2", "2029-01-01")]
    assert kept(apply_policy(only_future, RetentionPolicy(within=timedelta(days=3)), now=NOW).keep) == [
        "f1",
        "f2",
    ]


def test_tags_keep_any_matching_snapshot_only() -> None:
    snapshots = [
        snap("a", "2024-05-03"),
        snap("b", "2024-05-02", tags=("pin",)),
        snap("c", "2024-05-01", tags=("x",)),
    ]
    decision = apply_policy(snapshots, RetentionPolicy(tags=frozenset({"pin", "other"})), now=NOW)
    # A tags-only policy does not protect the newest snapshot (as in restic).
    assert kept(decision.keep) == ["b"]
    assert decision.reasons == {"b": ["tag pin"]}
    assert kept(decision.forget) == ["a", "c"]


def test_policy_applies_per_group() -> None:
    snapshots = [
        snap("h1-new", "2024-05-03", group="host1"),
        snap("h2-new", "2024-05-02", group="host2"),
        snap("h1-old", "2024-05-01", group="host1"),
        snap("h2-old", "2024-04-01", group="host2"),
    ]
    decision = apply_policy(snapshots, RetentionPolicy(last=1), now=NOW)
    assert kept(decision.keep) == ["h1-new", "h2-new"]
    assert kept(decision.forget) == ["h1-old", "h2-old"]


def test_equal_times_are_ordered_by_id() -> None:
    snapshots = [snap("aa", "2024-05-01"), snap("bb", "2024-05-01"), snap("cc", "2024-05-01")]
    decision = apply_policy(list(reversed(snapshots)), RetentionPolicy(last=1), now=NOW)
    assert kept(decision.keep) == ["cc"]
    assert kept(decision.forget) == ["bb", "aa"]


def test_restic_style_mixed_policy() -> None:
    # Daily backups at 03:00 through 2024; keep 7 daily, 4 weekly, 12 monthly.
    start = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)
    snapshots = [SnapshotRef(f"{day:03d}", start + timedelta(days=day)) for day in range(366)]
    now = datetime(2025, 1, 1, tzinfo=UTC)
    decision = apply_policy(snapshots, RetentionPolicy(daily=7, weekly=4, monthly=12), now=now)
    days = [s.time.date().isoformat() for s in decision.keep]
    last_week = [f"2024-12-{d}" for d in range(31, 24, -1)]
    # Weeks 2025-W01 (12-30..31) and 2024-W52 (ends Sunday 12-29) are already kept by daily.
    sundays = ["2024-12-22", "2024-12-15"]
    month_ends = ["2024-11-30", "2024-10-31", "2024-09-30", "2024-08-31", "2024-07-31", "2024-06-30"]
    month_ends += ["2024-05-31", "2024-04-30", "2024-03-31", "2024-02-29", "2024-01-31"]
    assert days == last_week + sundays + month_ends  # exactly 12 months: no oldest extra
    assert decision.reasons["365"] == ["daily 2024-12-31", "weekly 2025-W01", "monthly 2024-12"]
    assert decision.reasons["362"] == ["daily 2024-12-28"]
    assert decision.reasons["364"] == ["daily 2024-12-30"]
    assert decision.reasons["363"] == ["daily 2024-12-29", "weekly 2024-W52"]

    # Thirteen months asked for, twelve exist: the oldest snapshot is kept too.
    longer = apply_policy(snapshots, RetentionPolicy(daily=7, weekly=4, monthly=13), now=now)
    assert [s.time.date().isoformat() for s in longer.keep] == [*days, "2024-01-01"]
    assert longer.reasons["000"] == ["oldest monthly 2024-01"]


# --- properties -------------------------------------------------------------------------------

BASE = datetime(2022, 1, 1, tzinfo=UTC)
_times = st.integers(0, 3 * 365 * 24 * 60).map(lambda minutes: BASE + timedelta(minutes=minutes))
_snapshot_facts = st.tuples(
    _times,
    st.frozensets(st.sampled_from(["a", "b", "c"]), max_size=2),
    st.sampled_from(["", "host1", "host2"]),
)
snapshot_lists = st.lists(_snapshot_facts, max_size=40).map(
    lambda facts: [SnapshotRef(f"{i:04x}", t, tags, group) for i, (t, tags, group) in enumerate(facts)]
)
_count = st.one_of(st.just(0), st.integers(0, 6), st.just(-1))
policies = st.builds(
    RetentionPolicy,
    last=_count,
    hourly=_count,
    daily=_count,
    weekly=_count,
    monthly=_count,
    yearly=_count,
    within=st.one_of(st.none(), st.integers(0, 400 * 24).map(lambda h: timedelta(hours=h))),
    tags=st.frozensets(st.sampled_from(["a", "b", "z"]), max_size=2),
).filter(lambda policy: not policy.empty())
nows = st.one_of(st.just(BASE + timedelta(days=4 * 365)), _times)


@SETTINGS
@given(snapshot_lists, policies, nows)
def test_keep_and_forget_partition_the_input(
    snapshots: list[SnapshotRef], policy: RetentionPolicy, now: datetime
) -> None:
    decision = apply_policy(snapshots, policy, now=now)
    keep_ids = {s.id for s in decision.keep}
    forget_ids = {s.id for s in decision.forget}
    assert keep_ids.isdisjoint(forget_ids)
    assert keep_ids | forget_ids == {s.id for s in snapshots}
    assert len(decision.keep) + len(decision.forget) == len(snapshots)
    assert set(decision.reasons) == keep_ids
    assert all(decision.reasons[i] for i in keep_ids)
    for ordered in (decision.keep, decision.forget):
        assert ordered == sorted(ordered, key=lambda s: (s.time, s.id), reverse=True)


@SETTINGS
@given(snapshot_lists, st.integers(1, 45), nows)
def test_keep_last_keeps_exactly_the_newest(snapshots: list[SnapshotRef], count: int, now: datetime) -> None:
    one_group = [dataclasses.replace(s, group="") for s in snapshots]
    decision = apply_policy(one_group, RetentionPolicy(last=count), now=now)
    newest = sorted(one_group, key=lambda s: (s.time, s.id), reverse=True)[:count]
    assert decision.keep == newest


@SETTINGS
@given(snapshot_lists, policies, nows)
def test_newest_of_each_group_is_kept_when_a_count_or_within_is_set(
    snapshots: list[SnapshotRef], policy: RetentionPolicy, now: datetime
) -> None:
    if all(count == 0 for _, count in policy.counts()) and not policy.within:
        policy = dataclasses.replace(policy, daily=1)
    decision = apply_policy(snapshots, policy, now=now)
    keep_ids = {s.id for s in decision.keep}
    for group in {s.group for s in snapshots}:
        newest = max((s for s in snapshots if s.group == group), key=lambda s: (s.time, s.id))
        assert newest.id in keep_ids


@SETTINGS
@given(snapshot_lists, policies, nows)
def test_policy_is_idempotent(snapshots: list[SnapshotRef], policy: RetentionPolicy, now: datetime) -> None:
    first = apply_policy(snapshots, policy, now=now)
    second = apply_policy(first.keep, policy, now=now)
    assert second.keep == first.keep
    assert second.forget == []


@SETTINGS
@given(
    snapshot_lists,
    policies,
    nows,
    st.sampled_from(["last", "hourly", "daily", "weekly", "monthly", "yearly"]),
    st.integers(1, 5),
)
def test_raising_a_count_never_forgets_more(
    snapshots: list[SnapshotRef], policy: RetentionPolicy, now: datetime, field: str, extra: int
) -> None:
    before = apply_policy(snapshots, policy, now=now)
    current = getattr(policy, field)
    for raised in {current + extra if current >= 0 else -1, -1}:
        changes: dict[str, int] = {field: raised}
        after = apply_policy(snapshots, dataclasses.replace(policy, **changes), now=now)  # type: ignore[arg-type]
        assert {s.id for s in after.forget} <= {s.id for s in before.forget}


@SETTINGS
@given(snapshot_lists, policies, nows, st.integers(1, 24 * 30))
def test_widening_within_never_forgets_more(
    snapshots: list[SnapshotRef], policy: RetentionPolicy, now: datetime, hours: int
) -> None:
    before = apply_policy(snapshots, policy, now=now)
    wider = (policy.within or timedelta(0)) + timedelta(hours=hours)
    after = apply_policy(snapshots, dataclasses.replace(policy, within=wider), now=now)
    assert {s.id for s in after.forget} <= {s.id for s in before.forget}


@SETTINGS
@given(snapshot_lists, policies, nows)
def test_groups_are_independent(snapshots: list[SnapshotRef], policy: RetentionPolicy, now: datetime) -> None:
    whole = apply_policy(snapshots, policy, now=now)
    for group in {s.group for s in snapshots}:
        alone = apply_policy([s for s in snapshots if s.group == group], policy, now=now)
        assert alone.keep == [s for s in whole.keep if s.group == group]
        assert alone.reasons == {s.id: whole.reasons[s.id] for s in alone.keep}
