"""The ``forget`` retention policy: which snapshots to keep, which to forget, and why.

Pure: no repository access, no clock. The semantics follow restic's ``forget`` so that a policy
means the same thing to someone who knows restic:

* snapshots are split into groups (:attr:`SnapshotRef.group`, e.g. host + paths) and the
  policy applies to each group on its own;
* within a group, snapshots are walked newest first (ties broken by id, highest first);
* ``last = N`` keeps the N newest;
* ``hourly/daily/weekly/monthly/yearly = N`` keep the newest snapshot of each distinct
  hour / day / ISO week / month / year (in UTC) until N such periods have been kept. If the
  group runs out of snapshots before N periods are filled, the group's oldest snapshot is kept
  too (reason ``"oldest daily 2024-05-01"``), which stretches the history as far as the counts
  allow. A count of ``-1`` means "every period" (restic's ``--keep-daily -1``);
* ``within = D`` keeps every snapshot strictly newer than ``latest - D``, where ``latest`` is
  the newest snapshot of the group that is not in the future (before ``now``); a group whose
  snapshots are all in the future keeps them all. Anchoring at the newest snapshot rather than
  at ``now`` means a machine that stopped backing up does not lose its history to ``within``;
* ``tags`` keeps every snapshot carrying at least one of the tags (restic's ``--keep-tag``,
  without its comma-separated "all of these" lists).

A snapshot is kept if any rule keeps it; :attr:`Decision.reasons` lists every rule that did.
Every non-empty policy with a nonzero count or a ``within`` keeps the newest snapshot of every
group (a tags-only policy does not, exactly as in restic). An empty policy is refused rather
than read as "forget everything".

Durations (:func:`parse_duration`) use restic's syntax, ``1y2m3d4h``, but turn it into a fixed
:class:`~datetime.timedelta`: a year is 365 days and a month 30 days, rather than restic's
calendar arithmetic. The difference is at most a day or two per year of the duration, and a
fixed length keeps the policy a plain value that compares and prints the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lifeboat.errors import InputError, UsageError

__all__ = [
    "EMPTY_POLICY_MESSAGE",
    "Decision",
    "RetentionPolicy",
    "SnapshotRef",
    "apply_policy",
    "format_duration",
    "parse_duration",
]

#: The refusal for a policy that keeps nothing (names the CLI options a user can add).
EMPTY_POLICY_MESSAGE = "no --keep-* option given; refusing to forget every snapshot"

#: Days in one duration unit: ``y`` and ``m`` are fixed lengths (see the module docstring).
_UNIT_DAYS = {"y": 365, "m": 30, "d": 1}
_DURATION = re.compile(r"(?:[0-9]+[ymdh])+")
_DURATION_PART = re.compile(r"([0-9]+)([ymdh])")
_DURATION_HELP = "use numbers with units y (365 days), m (30 days), d (days), h (hours), like 1y6m or 36h"


def parse_duration(text: str) -> timedelta:
    """Parse a restic-style duration such as ``"1y2m3d4h"`` (any order; repeated units add up).

    ``y`` is 365 days, ``m`` is 30 days (months, not minutes), ``d`` a day and ``h`` an hour.
    Anything else — an empty string, a sign, a fraction, another unit, a number without a unit —
    raises :class:`InputError`.

    >>> parse_duration("1y2m3d4h")
    datetime.timedelta(days=428, seconds=14400)
    >>> parse_duration("36h")
    datetime.timedelta(days=1, seconds=43200)
    """
    stripped = text.strip()
    shown = stripped[:40] + ("..." if len(stripped) > 40 else "")
    if not stripped:
        raise InputError(f"duration is empty; {_DURATION_HELP}")
    if not _DURATION.fullmatch(stripped):
        raise InputError(f"invalid duration {shown!r}; {_DURATION_HELP}")
    days = 0
    hours = 0
    for number, unit in _DURATION_PART.findall(stripped):
        if unit == "h":
            hours += int(number)
        else:
            days += int(number) * _UNIT_DAYS[unit]
    try:
        return timedelta(days=days, hours=hours)
    except OverflowError:
        raise InputError(f"duration {shown!r} is too long") from None


def format_duration(duration: timedelta) -> str:
    """Render ``duration`` in the syntax of :func:`parse_duration` (days and hours only).

    A duration with minutes or seconds falls back to Python's ``str`` form.

    >>> format_duration(parse_duration("1y2m3d4h"))
    '428d4h'
    >>> format_duration(timedelta(hours=5))
    '5h'
    """
    whole_hours, remainder = divmod(duration, timedelta(hours=1))
    if remainder or duration < timedelta(0):
        return str(duration)
    days, hours = divmod(whole_hours, 24)
    parts = [f"{days}d"] if days else []
    if hours or not parts:
        parts.append(f"{hours}h")
    return "".join(parts)


@dataclass(frozen=True)
class RetentionPolicy:
    """What ``forget`` keeps; see the module docstring for the meaning of each field.

    Counts are ``>= 0``, or ``-1`` for "every period". ``within`` must not be negative; a zero
    ``within`` is the same as none. ``tags`` may be given as any iterable of strings.
    """

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: timedelta | None = None
    tags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name, count in self.counts():
            if isinstance(count, bool) or not isinstance(count, int) or count < -1:
                raise UsageError(f"--keep-{name} must be a whole number >= 0 (or -1 for all), not {count!r}")
        if self.within is not None and self.within < timedelta(0):
            raise UsageError(f"--keep-within must not be negative, not {self.within}")
        if isinstance(self.tags, str):
            raise UsageError("keep tags must be a collection of tags, not one string")
        object.__setattr__(self, "tags", frozenset(self.tags))

    def counts(self) -> list[tuple[str, int]]:
        """The counted rules in evaluation order: ``[("last", n), ("hourly", n), ...]``."""
        return [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]

    def empty(self) -> bool:
        """True when no rule keeps anything (all counts zero, no ``within``, no tags)."""
        within = self.within is not None and self.within > timedelta(0)
        return not within and not self.tags and all(count == 0 for _, count in self.counts())

    def describe(self) -> str:
        """One line for humans: ``"keep 3 last, 7 daily snapshots; all within 30d; tags: a, b"``."""
        counted = [f"{'all' if count == -1 else count} {name}" for name, count in self.counts() if count != 0]
        parts = [f"keep {', '.join(counted)} snapshots"] if counted else []
        if self.within is not None and self.within > timedelta(0):
            parts.append(f"all within {format_duration(self.within)} of the newest")
        if self.tags:
            parts.append(f"every snapshot tagged {', '.join(sorted(self.tags))}")
        return "; ".join(parts) if parts else "keep nothing (empty policy)"


@dataclass(frozen=True)
class SnapshotRef:
    """The facts about one snapshot that the policy looks at.

    ``time`` must be timezone-aware (a naive time raises :class:`InputError`); it is stored
    converted to UTC. ``group`` is an opaque key (for example host + paths): the policy applies
    to each group separately.
    """

    id: str
    time: datetime
    tags: frozenset[str] = frozenset()
    group: str = ""

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise InputError(f"snapshot {self.id} has a time without a time zone ({self.time.isoformat()})")
        object.__setattr__(self, "time", self.time.astimezone(UTC))
        object.__setattr__(self, "tags", frozenset(self.tags))


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`apply_policy`.

    ``keep`` and ``forget`` partition the input, each ordered newest first. ``reasons`` maps the
    id of every kept snapshot to the rules that kept it, e.g. ``["last", "daily 2024-05-01"]``.
    """

    keep: list[SnapshotRef]
    forget: list[SnapshotRef]
    reasons: dict[str, list[str]] = field(default_factory=dict)


def apply_policy(snapshots: Sequence[SnapshotRef], policy: RetentionPolicy, *, now: datetime) -> Decision:
    """Decide which ``snapshots`` to keep under ``policy`` (see the module docstring).

    ``now`` (timezone-aware) only serves to ignore snapshots from the future when anchoring
    ``within``. Raises :class:`UsageError` for an empty policy and :class:`InputError` for a
    naive ``now`` or two snapshots with the same id.
    """
    if policy.empty():
        raise UsageError(EMPTY_POLICY_MESSAGE)
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError(f"'now' must be timezone-aware, not {now.isoformat()}")
    groups: dict[str, list[SnapshotRef]] = {}
    seen: set[str] = set()
    for snapshot in snapshots:
        if snapshot.id in seen:
            raise InputError(f"snapshot {snapshot.id} is listed twice")
        seen.add(snapshot.id)
        groups.setdefault(snapshot.group, []).append(snapshot)
    reasons: dict[str, list[str]] = {}
    for group in sorted(groups):
        members = sorted(groups[group], key=_newest_first, reverse=True)
        reasons.update(_apply_to_group(members, policy, now))
    ordered = sorted(snapshots, key=_newest_first, reverse=True)
    return Decision(
        keep=[snapshot for snapshot in ordered if snapshot.id in reasons],
        forget=[snapshot for snapshot in ordered if snapshot.id not in reasons],
        reasons={snapshot.id: reasons[snapshot.id] for snapshot in ordered if snapshot.id in reasons},
    )


def _newest_first(snapshot: SnapshotRef) -> tuple[datetime, str]:
    return (snapshot.time, snapshot.id)


#: Period labels (one string per distinct period, which doubles as the period's identity).
_PERIODS: dict[str, Callable[[datetime], str]] = {
    "hourly": lambda t: t.strftime("%Y-%m-%d %H:00"),
    "daily": lambda t: t.strftime("%Y-%m-%d"),
    "weekly": lambda t: "{:04d}-W{:02d}".format(*t.isocalendar()[:2]),
    "monthly": lambda t: t.strftime("%Y-%m"),
    "yearly": lambda t: f"{t.year:04d}",
}


def _apply_to_group(
    members: list[SnapshotRef], policy: RetentionPolicy, now: datetime
) -> dict[str, list[str]]:
    """Reasons for the kept snapshots of one group; ``members`` is sorted newest first."""
    remaining = dict(policy.counts())
    previous: dict[str, str | None] = dict.fromkeys(remaining)
    cutoff: datetime | None = None
    within = policy.within if policy.within is not None and policy.within > timedelta(0) else None
    if within is not None:
        latest = max((snapshot.time for snapshot in members if snapshot.time < now), default=None)
        cutoff = None if latest is None else latest - within
    reasons: dict[str, list[str]] = {}
    oldest = len(members) - 1
    for number, snapshot in enumerate(members):
        why = [f"tag {tag}" for tag in sorted(snapshot.tags & policy.tags)]
        if within is not None and (cutoff is None or snapshot.time > cutoff):
            why.append(f"within {format_duration(within)}")
        for kind, count in remaining.items():
            if count == 0:
                continue
            period = str(number) if kind == "last" else _PERIODS[kind](snapshot.time)
            if period == previous[kind] and number != oldest:
                continue
            if kind == "last":
                why.append("last")
            elif period == previous[kind]:
                why.append(f"oldest {kind} {period}")
            else:
                why.append(f"{kind} {period}")
            previous[kind] = period
            if count > 0:
                remaining[kind] = count - 1
        if why:
            reasons[snapshot.id] = why
    return reasons
