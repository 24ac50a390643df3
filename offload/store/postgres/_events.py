"""The PostgreSQL engine's events family: topics, the log and consumer groups
(offload/store/_events.py).

A publish locks the rows of the partitions it writes to (in partition order, so that two
publishers never deadlock) and moves their heads in its own transaction; the locks are held
until it commits, so a reader never sees an offset before every lower one has committed, and a
rolled-back publish gives its offsets back.
"""

from __future__ import annotations

import json
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
from offload.store.postgres._connect import async_caller_connection
from offload.store.postgres._core import Conn, PostgresCore
from offload.store.postgres._values import plain_text

KEEP_ALL = 2**62


class PostgresEvents(PostgresCore, EventOps):
    """Topics, events and consumer groups."""

    def topic_ensure(self, spec: TopicSpec) -> TopicSpec:
        params = {
            "name": spec.name,
            "partitions": spec.partitions,
            "retention_seconds": spec.retention_seconds,
            "retention_events": spec.retention_events,
        }

        def body(c: Conn) -> TopicSpec:
            stored = _spec(self._one(c, "topic_insert", params))
            c.execute(
                self._q["topic_parts_insert"], {"topic": spec.name, "partitions": stored.partitions}
            )
            return stored

        return self._run("topic_ensure", body, transaction=True)

    def topic_specs(self) -> list[TopicSpec]:
        return [_spec(r) for r in self._rows("topic_list")]

    def event_append(self, topic: str, events: Sequence[NewEvent]) -> list[Placed]:
        if not events:
            return []
        idems = sorted({e.idem_key for e in events if e.idem_key is not None})
        parts = sorted({e.part for e in events})
        if not idems and len(parts) == 1:
            return self._append_one(topic, parts[0], events)

        def body(c: Conn) -> list[Placed]:
            known: dict[str, Placed] = {}
            if len(parts) > 1 or idems:  # every lock first, in partition order
                c.execute(self._q["part_lock"], {"topic": topic, "parts": parts})
            if idems:
                for r in c.execute(self._q["event_by_idem"], {"topic": topic, "idems": idems}):
                    known[str(r[0])] = Placed(int(r[1]), int(r[2]), float(r[3]), True)
            counts = _counts(events, known)
            rows = []
            if counts:
                rows = c.execute(self._q["part_advance"], _advance_params(topic, counts)).fetchall()
            placed, insert = _placed(topic, events, known, counts, rows)
            if insert is not None:
                c.execute(self._q["event_insert"], insert)
            return placed

        return self._run("event_append", body, idempotent=False, transaction=True)

    def _append_one(self, topic: str, part: int, events: Sequence[NewEvent]) -> list[Placed]:
        """`event_append` to one partition without idempotency keys: one statement."""
        rows = self._rows("event_append_one", _one_params(topic, part, events), idempotent=False)
        return _placed_one(topic, part, rows)

    async def event_append_async(
        self, topic: str, events: Sequence[NewEvent], conn: Any
    ) -> list[Placed]:
        """`event_append` in the transaction of a caller's async psycopg connection (or a
        SQLAlchemy async connection or session on psycopg), through the async driver."""
        if not events:
            return []
        own = await async_caller_connection(conn)
        idems = sorted({e.idem_key for e in events if e.idem_key is not None})
        parts = sorted({e.part for e in events})

        async def body() -> list[Placed]:
            if not idems and len(parts) == 1:
                params = _one_params(topic, parts[0], events)
                cur = await own.execute(self._q["event_append_one"], params)
                return _placed_one(topic, parts[0], await cur.fetchall())
            known: dict[str, Placed] = {}
            if len(parts) > 1 or idems:
                await own.execute(self._q["part_lock"], {"topic": topic, "parts": parts})
            if idems:
                params = {"topic": topic, "idems": idems}
                cur = await own.execute(self._q["event_by_idem"], params)
                for r in await cur.fetchall():
                    known[str(r[0])] = Placed(int(r[1]), int(r[2]), float(r[3]), True)
            counts = _counts(events, known)
            rows: list[Any] = []
            if counts:
                cur = await own.execute(self._q["part_advance"], _advance_params(topic, counts))
                rows = await cur.fetchall()
            placed, insert = _placed(topic, events, known, counts, rows)
            if insert is not None:
                await own.execute(self._q["event_insert"], insert)
            return placed

        if own.autocommit:
            async with own.transaction():
                return await body()
        return await body()

    def event_read(self, topic: str, part: int, after: int, limit: int) -> list[StoredEvent]:
        params = {"topic": topic, "part": part, "after": after, "limit": limit}
        return [_event(r) for r in self._rows("event_read", params)]

    def event_offset_at(self, topic: str, part: int, since: float) -> int:
        return int(self._scalar("event_offset_at", {"topic": topic, "part": part, "since": since}))

    def partition_list(self, topic: str | None = None) -> list[PartitionInfo]:
        rows = self._rows("partition_list", {"topic": topic})
        return [
            PartitionInfo(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[2]) - int(r[3]))
            for r in rows
        ]

    def group_lock(self, topic: str, group: str, part: int, start: int) -> GroupPosition:
        key = {"topic": topic, "grp": group, "part": part}

        def body(c: Conn) -> GroupPosition:
            c.execute(self._q["group_insert"], {**key, "start": start})
            return _position(self._one(c, "group_lock", key))

        return self._run("group_lock", body, transaction=True)

    def group_set_job(self, topic: str, group: str, part: int, job_id: int) -> None:
        self._exec("group_set_job", {"topic": topic, "grp": group, "part": part, "job_id": job_id})

    def group_fenced(self, topic: str, group: str, part: int, job_id: int, token: int) -> bool:
        params = {"topic": topic, "grp": group, "part": part, "job_id": job_id, "token": token}
        return bool(self._rows("group_fenced", params))

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
        }
        return self._count("group_commit", params) > 0

    def group_positions(
        self, topic: str | None = None, group: str | None = None
    ) -> list[GroupPosition]:
        return [_position(r) for r in self._rows("group_positions", {"topic": topic, "grp": group})]

    def group_set(self, topic: str, group: str, positions: Mapping[int, int]) -> int:
        parts = sorted(positions)
        params = {
            "topic": topic,
            "grp": group,
            "parts": parts,
            "offsets": [positions[p] for p in parts],
        }
        return self._count("group_set", params)

    def part_heads_locked(self, topic: str) -> dict[int, int]:
        rows = self._rows("part_heads", {"topic": topic})
        return {int(r[0]): int(r[1]) for r in rows}

    def subscription_insert(self, topic: str, name: str, starts: Mapping[int, int]) -> bool:
        text = json.dumps({str(k): int(v) for k, v in sorted(starts.items())})
        return (
            self._count("subscription_insert", {"topic": topic, "name": name, "starts": text}) > 0
        )

    def subscription_list(self, topic: str | None = None) -> list[SubscriptionRecord]:
        out = []
        for r in self._rows("subscription_list", {"topic": topic}):
            starts = {int(k): int(v) for k, v in json.loads(r[2]).items()}
            out.append(SubscriptionRecord(str(r[0]), str(r[1]), starts, float(r[3])))
        return out

    def kind_backlog(self, kinds: Sequence[str]) -> dict[str, int]:
        if not kinds:
            return {}
        return {str(r[0]): int(r[1]) for r in self._rows("kind_backlog", {"kinds": list(kinds)})}

    def event_prune(self, spec: TopicSpec, now: float, keep_unconsumed: bool) -> Pruned:
        params = {
            "topic": spec.name,
            "oldest": -1e300 if spec.retention_seconds is None else now - spec.retention_seconds,
            "keep": KEEP_ALL if spec.retention_events is None else spec.retention_events,
            "keep_unconsumed": keep_unconsumed,
        }
        row = self._run("event_prune", lambda c: self._one(c, "event_prune", params))
        removed = int(row[0])
        return Pruned(removed, int(row[1]), {spec.name: removed} if removed else {})


def _spec(r: Sequence[Any]) -> TopicSpec:
    return TopicSpec(
        str(r[0]),
        int(r[1]),
        None if r[2] is None else float(r[2]),
        None if r[3] is None else int(r[3]),
    )


def _event(r: Sequence[Any]) -> StoredEvent:
    meta = r[5] if isinstance(r[5], dict) else {}
    return StoredEvent(
        str(r[0]),
        int(r[1]),
        int(r[2]),
        None if r[3] is None else str(r[3]),
        r[4],
        meta,
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


def _one_params(topic: str, part: int, events: Sequence[NewEvent]) -> dict[str, Any]:
    return {
        "topic": topic,
        "part": part,
        "n": len(events),
        "keys": [None if e.key is None else plain_text(e.key) for e in events],
        "payloads": [e.payload_json for e in events],
        "metas": [e.meta_json for e in events],
    }


def _placed_one(topic: str, part: int, rows: Sequence[Any]) -> list[Placed]:
    if not rows:
        raise ValueError(f"topic {topic!r} has no partition {part}")
    return [Placed(int(r[0]), int(r[1]), float(r[2])) for r in rows]


def _counts(events: Sequence[NewEvent], known: dict[str, Placed]) -> dict[int, int]:
    """Events to append per partition (those whose idempotency key is not `known`)."""
    counts: dict[int, int] = {}
    for e in events:
        if e.idem_key is None or e.idem_key not in known:
            counts[e.part] = counts.get(e.part, 0) + 1
    return counts


def _advance_params(topic: str, counts: dict[int, int]) -> dict[str, Any]:
    taken = sorted(counts)
    return {"topic": topic, "parts": taken, "counts": [counts[p] for p in taken]}


def _placed(
    topic: str,
    events: Sequence[NewEvent],
    known: dict[str, Placed],
    counts: dict[int, int],
    rows: Sequence[Any],
) -> tuple[list[Placed], dict[str, Any] | None]:
    """Where each event goes, from the partitions' new heads (`rows` of part_advance), and
    the parameters of the insert (None: nothing to insert)."""
    if len(rows) != len(counts):
        found = {int(r[0]) for r in rows}
        missing = next(p for p in sorted(counts) if p not in found)
        raise ValueError(f"topic {topic!r} has no partition {missing}")
    nexts = {int(r[0]): int(r[1]) - counts[int(r[0])] for r in rows}
    now = float(rows[0][2]) if rows else 0.0
    placed: list[Placed] = []
    inserted: list[tuple[NewEvent, int]] = []
    for e in events:
        if e.idem_key is not None and e.idem_key in known:
            placed.append(known[e.idem_key])
            continue
        position = nexts[e.part]
        nexts[e.part] = position + 1
        placed.append(Placed(e.part, position, now))
        inserted.append((e, position))
        if e.idem_key is not None:
            known[e.idem_key] = Placed(e.part, position, now, True)
    if not inserted:
        return placed, None
    return placed, {
        "topic": topic,
        "now": now,
        "parts": [e.part for e, _ in inserted],
        "positions": [p for _, p in inserted],
        "keys": [None if e.key is None else plain_text(e.key) for e, _ in inserted],
        "payloads": [e.payload_json for e, _ in inserted],
        "metas": [e.meta_json for e, _ in inserted],
        "idems": [e.idem_key for e, _ in inserted],
    }
