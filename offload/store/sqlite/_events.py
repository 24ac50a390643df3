"""The SQLite engine's events family: topics, the log and consumer groups
(offload/store/_events.py). One writer at a time holds the file, so a partition's head moved
in the publish's transaction gives offsets in commit order."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from offload.store._events import (
    EventOps,
    GroupPosition,
    NewEvent,
    PartitionInfo,
    Placed,
    Pruned,
    StoredEvent,
    SubscriptionRecord,
    TopicSpec,
)
from offload.store._sql import queries
from offload.store.sqlite._base import SQLiteBase

KEEP_ALL = 2**62  # "no count limit" as a number SQLite compares


def events_sql() -> dict[str, str]:
    return queries("sqlite", "events")


class SQLiteEvents(SQLiteBase, EventOps):
    """The events family on the SQLite engine."""

    def topic_ensure(self, spec: TopicSpec) -> TopicSpec:
        q = events_sql()

        def body(c: sqlite3.Connection) -> TopicSpec:
            c.execute(
                q["topic_insert"],
                {
                    "name": spec.name,
                    "partitions": spec.partitions,
                    "retention_seconds": spec.retention_seconds,
                    "retention_events": spec.retention_events,
                    "now": self.now(),
                },
            )
            stored = _spec(c.execute(q["topic_get"], {"name": spec.name}).fetchone())
            for part in range(stored.partitions):
                c.execute(q["topic_part_insert"], {"topic": spec.name, "part": part})
            return stored

        return self._tx(body)

    def topic_specs(self) -> list[TopicSpec]:
        return [_spec(r) for r in self._read(events_sql()["topic_list"])]

    def event_append(self, topic: str, events: Sequence[NewEvent]) -> list[Placed]:
        q = events_sql()
        if not events:
            return []

        def body(c: sqlite3.Connection) -> list[Placed]:
            now = self.now()
            known: dict[str, Placed] = {}
            for e in events:
                if e.idem_key is not None and e.idem_key not in known:
                    row = c.execute(q["event_by_idem"], (topic, e.idem_key)).fetchone()
                    if row is not None:
                        known[e.idem_key] = Placed(int(row[0]), int(row[1]), float(row[2]), True)
            fresh = [e for e in events if e.idem_key is None or e.idem_key not in known]
            counts: dict[int, int] = {}
            for e in fresh:
                counts[e.part] = counts.get(e.part, 0) + 1
            nexts: dict[int, int] = {}
            for part, n in sorted(counts.items()):
                row = c.execute(q["part_advance"], {"topic": topic, "part": part, "n": n})
                found = row.fetchone()
                if found is None:
                    raise ValueError(f"topic {topic!r} has no partition {part}")
                nexts[part] = int(found[0]) - n
            placed: list[Placed] = []
            rows = []
            for e in events:
                if e.idem_key is not None and e.idem_key in known:
                    placed.append(known[e.idem_key])
                    continue
                position = nexts[e.part]
                nexts[e.part] = position + 1
                p = Placed(e.part, position, now)
                placed.append(p)
                if e.idem_key is not None:
                    known[e.idem_key] = Placed(e.part, position, now, True)
                row = (topic, e.part, position, e.key, e.payload_json, e.meta_json, now, e.idem_key)
                rows.append(row)
            c.executemany(q["event_insert"], rows)
            return placed

        return self._tx(body)

    def event_read(self, topic: str, part: int, after: int, limit: int) -> list[StoredEvent]:
        params = {"topic": topic, "part": part, "after": after, "limit": limit}
        return [_event(r) for r in self._read(events_sql()["event_read"], params)]

    def event_offset_at(self, topic: str, part: int, since: float) -> int:
        params = {"topic": topic, "part": part, "since": since}
        return int(self._read(events_sql()["event_offset_at"], params)[0][0])

    def partition_list(self, topic: str | None = None) -> list[PartitionInfo]:
        rows = self._read(events_sql()["partition_list"], {"topic": topic})
        return [
            PartitionInfo(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[2]) - int(r[3]))
            for r in rows
        ]

    def group_lock(self, topic: str, group: str, part: int, start: int) -> GroupPosition:
        q = events_sql()
        key = {"topic": topic, "grp": group, "part": part}

        def body(c: sqlite3.Connection) -> GroupPosition:
            c.execute(q["group_insert"], {**key, "start": start, "now": self.now()})
            return _position(c.execute(q["group_get"], key).fetchone())

        return self._tx(body)

    def group_set_job(self, topic: str, group: str, part: int, job_id: int) -> None:
        params = {"topic": topic, "grp": group, "part": part, "job_id": job_id, "now": self.now()}
        sql = events_sql()["group_set_job"]
        self._tx(lambda c: c.execute(sql, params))

    def group_fenced(self, topic: str, group: str, part: int, job_id: int, token: int) -> bool:
        params = {"topic": topic, "grp": group, "part": part, "job_id": job_id, "token": token}
        return bool(self._read(events_sql()["group_fenced"], params))

    def group_commit(
        self,
        topic: str,
        group: str,
        part: int,
        job_id: int,
        token: int,
        expect: int,
        next_offset: int,
    ) -> bool:
        params = {
            "topic": topic,
            "grp": group,
            "part": part,
            "job_id": job_id,
            "token": token,
            "expect": expect,
            "next_offset": next_offset,
            "now": self.now(),
        }
        sql = events_sql()["group_commit"]
        return bool(self._tx(lambda c: c.execute(sql, params).rowcount) > 0)

    def group_positions(
        self, topic: str | None = None, group: str | None = None
    ) -> list[GroupPosition]:
        rows = self._read(events_sql()["group_positions"], {"topic": topic, "grp": group})
        return [_position(r) for r in rows]

    def group_set(self, topic: str, group: str, positions: Mapping[int, int]) -> int:
        sql = events_sql()["group_set"]

        def body(c: sqlite3.Connection) -> int:
            now = self.now()
            changed = 0
            for part, offset in sorted(positions.items()):
                params = {"topic": topic, "grp": group, "part": part, "next_offset": offset}
                changed += c.execute(sql, {**params, "now": now}).rowcount
            return changed

        return int(self._tx(body))

    def part_heads_locked(self, topic: str) -> dict[int, int]:
        sql = events_sql()["part_heads"]
        rows = self._tx(lambda c: c.execute(sql, {"topic": topic}).fetchall())  # the write lock
        return {int(r[0]): int(r[1]) for r in rows}

    def subscription_insert(self, topic: str, name: str, starts: Mapping[int, int]) -> bool:
        params = {"topic": topic, "name": name, "starts": _starts_json(starts), "now": self.now()}
        sql = events_sql()["subscription_insert"]
        return bool(self._tx(lambda c: c.execute(sql, params).rowcount) > 0)

    def subscription_list(self, topic: str | None = None) -> list[SubscriptionRecord]:
        rows = self._read(events_sql()["subscription_list"], {"topic": topic})
        return [_subscription(r) for r in rows]

    def kind_backlog(self, kinds: Sequence[str]) -> dict[str, int]:
        if not kinds:
            return {}
        rows = self._read(events_sql()["kind_backlog"], {"kinds": json.dumps(list(kinds))})
        return {str(r[0]): int(r[1]) for r in rows}

    def event_prune(self, spec: TopicSpec, now: float, keep_unconsumed: bool) -> Pruned:
        q = events_sql()
        oldest = -1e300 if spec.retention_seconds is None else now - spec.retention_seconds
        keep = KEEP_ALL if spec.retention_events is None else spec.retention_events

        def body(c: sqlite3.Connection) -> Pruned:
            removed = unconsumed = 0
            for part in range(spec.partitions):
                key = {"topic": spec.name, "part": part}
                bound = c.execute(q["prune_bound"], {**key, "oldest": oldest, "keep": keep})
                limit = bound.fetchone()[0]
                if limit is None:
                    continue
                limit = int(limit)
                floor = c.execute(q["prune_floor"], key).fetchone()[0]
                if floor is not None:
                    if keep_unconsumed:
                        limit = min(limit, int(floor))
                    else:
                        below = c.execute(
                            q["prune_count_below"], {**key, "bound": limit, "floor": int(floor)}
                        )
                        unconsumed += int(below.fetchone()[0])
                removed += c.execute(q["prune_delete"], {**key, "bound": limit}).rowcount
            return Pruned(removed, unconsumed, {spec.name: removed} if removed else {})

        return self._tx(body)


def _spec(r: Sequence[Any]) -> TopicSpec:
    return TopicSpec(
        str(r[0]),
        int(r[1]),
        None if r[2] is None else float(r[2]),
        None if r[3] is None else int(r[3]),
    )


def _event(r: Sequence[Any]) -> StoredEvent:
    return StoredEvent(
        str(r[0]),
        int(r[1]),
        int(r[2]),
        None if r[3] is None else str(r[3]),
        json.loads(r[4]),
        json.loads(r[5]) if r[5] else {},
        float(r[6]),
    )


def _position(r: Sequence[Any]) -> GroupPosition:
    return GroupPosition(
        str(r[0]),
        str(r[1]),
        int(r[2]),
        int(r[3]),
        None if r[4] is None else int(r[4]),
        None if r[5] is None else str(r[5]),
        int(r[6]),
    )


def _starts_json(starts: Mapping[int, int]) -> str:
    return json.dumps({str(k): int(v) for k, v in sorted(starts.items())})


def _subscription(r: Sequence[Any]) -> SubscriptionRecord:
    starts = {int(k): int(v) for k, v in json.loads(r[2]).items()}
    return SubscriptionRecord(str(r[0]), str(r[1]), starts, float(r[3]))
