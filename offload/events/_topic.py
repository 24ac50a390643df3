"""A topic: an append-only log of partitions in the store (`app.topic("orders", partitions=4)`).

`publish` appends an event to the partition its key picks (CRC-32 of the key's UTF-8 bytes
modulo the partitions; a random one without a key) and, in the same transaction, makes one job
per subscription the application declares on the topic. With `connection=` all of it joins the
caller's transaction, as an enqueue does.
"""

from __future__ import annotations

import inspect
import json
import random
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from offload._errors import ConfigurationError, InvalidArgumentsError
from offload._text import name_problem, shown
from offload.events._event import Event
from offload.events._replay import replay
from offload.jobs._payload import args_json, check_json
from offload.jobs._type import seconds
from offload.store._contract import NewJob, Store, joined
from offload.store._events import NewEvent, Placed, TopicSpec

if TYPE_CHECKING:
    from offload.app._offload import Offload
    from offload.jobs._type import JobType

MAX_TOPIC_NAME = 200
MAX_PARTITIONS = 1024
MAX_KEY = 1000


def partition_for(key: str | None, partitions: int) -> int:
    """The partition of a key: CRC-32 of its UTF-8 bytes modulo the partitions (the same in
    every language); a random one for no key."""
    if key is None:
        return random.randrange(partitions)
    return zlib.crc32(key.encode("utf-8")) % partitions


def check_topic_name(name: object) -> str:
    if not isinstance(name, str):
        raise ConfigurationError(f"a topic's name must be text, got {name!r}")
    problem = name_problem(name, MAX_TOPIC_NAME)
    if problem is not None or "/" in name:
        problem = problem or "holds a '/'"
        raise ConfigurationError(f"the topic name {shown(name)} {problem}; e.g. 'orders'")
    return name


class Topic:
    """A topic declared on an application: publish to it, read it, replay it."""

    def __init__(
        self,
        app: Offload,
        name: str,
        partitions: int = 1,
        retention: float | timedelta | None = None,
        max_events: int | None = None,
        keep_unconsumed: bool = True,
    ) -> None:
        self.app = app
        self.name = check_topic_name(name)
        if isinstance(partitions, bool) or not isinstance(partitions, int):
            raise ConfigurationError(f"topic {name!r}: partitions must be an integer")
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ConfigurationError(f"topic {name!r}: partitions must be 1..{MAX_PARTITIONS}")
        if max_events is not None and (
            isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 0
        ):
            raise ConfigurationError(f"topic {name!r}: max_events must be a count of events")
        self.partitions = partitions
        self.retention = seconds(retention, f"topic {name!r}: retention")
        self.max_events = max_events
        self.keep_unconsumed = keep_unconsumed
        self.subscriptions: list[JobType] = []
        self._ensured = False
        self._lock = threading.Lock()
        # Where each subscription starts when the store first records it (None: the end of
        # the log; an offset; a datetime), and the ones known to be recorded.
        self.subscription_starts: dict[str, Any] = {}
        self._recorded: set[str] = set()
        # Meta the publishing context adds to every event (the app sets it: the running
        # job's id and correlation id).
        self.context_meta: Callable[[], dict[str, Any]] = dict

    def __repr__(self) -> str:
        return f"<Topic {self.name} partitions={self.partitions}>"

    @property
    def spec(self) -> TopicSpec:
        return TopicSpec(self.name, self.partitions, self.retention, self.max_events)

    def ensure(self, executor: Store | None = None) -> None:
        """Record the topic and its partitions in the store, once per process. Inside a
        transaction (`executor`, or the app's open one) it is only read, and written there
        when missing, but not remembered: the transaction may still roll back."""
        if self._ensured:
            return
        store = executor if executor is not None else self.app.store
        if store.in_transaction:
            found = [s for s in store.topic_specs() if s.name == self.name]
            if not found or found[0].partitions < self.partitions:
                self._check(store.topic_ensure(self.spec))
            else:
                self._check(found[0])  # more partitions in the store: keys would map apart
            return
        with self._lock:
            if not self._ensured:
                self._check(store.topic_ensure(self.spec))
                if self._unrecorded():
                    with store.transaction() as tx:
                        self.record_subscriptions(tx)
                self._ensured = True

    # --- subscriptions in the store ----------------------------------------------------
    def _unrecorded(self) -> list[JobType]:
        return [s for s in self.subscriptions if s.name not in self._recorded]

    def record_subscriptions(self, tx: Store) -> None:
        """Record the declared subscriptions the store does not hold yet, in transaction `tx`:
        each starts where it says (`start=`: the end of the log by default, an offset, or a
        time) and gets a job for every kept event from its start up to the head. Every
        partition is held meanwhile, so each event gets its job once: from the backfill, or
        from its publish."""
        missing = self._unrecorded()
        if not missing:
            return
        heads = tx.part_heads_locked(self.name)
        recorded = {r.name for r in tx.subscription_list(self.name)}
        for sub in missing:
            if sub.name not in recorded:
                starts = self._starts(tx, self.subscription_starts.get(sub.name), heads)
                if tx.subscription_insert(self.name, sub.name, starts):
                    self._backfill(tx, sub, starts, heads)
            self._recorded.add(sub.name)

    def _starts(self, tx: Store, start: Any, heads: dict[int, int]) -> dict[int, int]:
        if start is None or start == "end":
            return dict(heads)
        if isinstance(start, datetime):
            return {p: tx.event_offset_at(self.name, p, start.timestamp()) for p in heads}
        return {p: min(int(start), h) for p, h in heads.items()}

    def _backfill(
        self, tx: Store, sub: JobType, starts: dict[int, int], heads: dict[int, int]
    ) -> None:
        for part, start in sorted(starts.items()):
            after = start - 1
            while after < heads[part] - 1:
                stored = tx.event_read(self.name, part, after, 500)
                stored = [e for e in stored if e.position < heads[part]]
                if not stored:
                    break
                jobs = [subscription_job(sub, Event.of(e)) for e in stored]
                self.app.admit_and_store(jobs, connection=tx)
                after = stored[-1].position

    def _check(self, stored: TopicSpec) -> None:
        if stored.partitions != self.partitions:
            raise ConfigurationError(
                f"topic {self.name!r} has {stored.partitions} partitions in the store, "
                f"not {self.partitions}: partitions can be added, never taken away; "
                f"declare partitions={stored.partitions}"
            )

    # --- publishing ------------------------------------------------------------------
    def publish(
        self,
        payload: Any,
        key: str | None = None,
        connection: Any = None,
        *,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """Append one event (a JSON payload) to the partition its key picks, and make one
        job per subscription, in one transaction: its own, or `connection`'s (a store
        transaction from `app.transaction()`, or a connection of your own to the store's
        database, which you commit). The event as stored, with its offset. With an
        `idempotency_key` that an event of the topic still kept has, nothing is appended and
        that event's place is returned."""
        keys = None if idempotency_key is None else [idempotency_key]
        return self.publish_many(
            [payload], key=key, connection=connection, meta=meta, idempotency_keys=keys
        )[0]

    def publish_many(
        self,
        payloads: Iterable[Any],
        key: str | None = None,
        connection: Any = None,
        *,
        keys: Sequence[str | None] | None = None,
        meta: dict[str, Any] | None = None,
        idempotency_keys: Sequence[str | None] | None = None,
    ) -> list[Event]:
        """Append many events in one transaction (each with `key`, or its own from `keys`,
        and its idempotency key from `idempotency_keys`), with their subscriptions' jobs; the
        events as stored, in the order given."""
        marked = self.publish_marked(
            payloads, key, connection, keys=keys, meta=meta, idempotency_keys=idempotency_keys
        )
        return [e for e, _ in marked]

    def publish_marked(
        self,
        payloads: Iterable[Any],
        key: str | None = None,
        connection: Any = None,
        *,
        keys: Sequence[str | None] | None = None,
        meta: dict[str, Any] | None = None,
        idempotency_keys: Sequence[str | None] | None = None,
    ) -> list[tuple[Event, bool]]:
        """`publish_many`, each event with whether it was there already (its idempotency key
        found an event published before)."""
        items = list(payloads)
        if not items:
            return []
        if connection is not None and _is_async(connection):
            raise ConfigurationError(
                f"{type(connection).__name__} is an async connection: publish on it with "
                "`await topic.publish_async(..., connection=...)`"
            )
        if connection is None and not self.app.store.in_transaction:
            self.ensure()  # once, outside any transaction
        news = self._news(items, key, keys, meta, idempotency_keys)
        if connection is None:
            store = self.app.store
            if not store.in_transaction and not self.subscriptions:
                return self._append(store, news, items)  # the append is one transaction
            with self.app.transaction() as tx:
                return self._append(tx, news, items)
        executor = joined(self.app.store, connection) or self.app.store.bind(connection)
        with executor.transaction() as tx:
            return self._append(tx, news, items)

    def _news(
        self,
        items: list[Any],
        key: str | None,
        keys: Sequence[str | None] | None,
        meta: dict[str, Any] | None,
        idempotency_keys: Sequence[str | None] | None,
    ) -> list[NewEvent]:
        for what, given in (("keys", keys), ("idempotency_keys", idempotency_keys)):
            if given is not None and len(given) != len(items):
                raise InvalidArgumentsError(
                    f"publish_many got {len(items)} payloads and {len(given)} {what}", what
                )
        base_meta = _meta(meta, self.context_meta())
        news: list[NewEvent] = []
        for i, payload in enumerate(items):
            k = keys[i] if keys is not None else key
            idem = None if idempotency_keys is None else idempotency_keys[i]
            news.append(self._new_event(payload, k, base_meta, idem))
        return news

    async def publish_async(
        self,
        payload: Any,
        key: str | None = None,
        connection: Any = None,
        *,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Event:
        """`publish` for async code (on the app's bridge threads; `connection` may be the
        store transaction of `app.transaction_async()`)."""
        idems = None if idempotency_key is None else [idempotency_key]
        events = await self.publish_many_async(
            [payload], key, connection, meta=meta, idempotency_keys=idems
        )
        return events[0]

    async def publish_many_async(
        self,
        payloads: Iterable[Any],
        key: str | None = None,
        connection: Any = None,
        *,
        keys: Sequence[str | None] | None = None,
        meta: dict[str, Any] | None = None,
        idempotency_keys: Sequence[str | None] | None = None,
    ) -> list[Event]:
        """`publish_many` for async code."""
        items = list(payloads)
        if connection is not None and _is_async(connection):
            return await self._publish_on_async(
                items, key, connection, keys, meta, idempotency_keys
            )

        def run() -> list[Event]:
            return self.publish_many(
                items, key, connection, keys=keys, meta=meta, idempotency_keys=idempotency_keys
            )

        return await self.app.bridge(run)

    async def _publish_on_async(
        self,
        items: list[Any],
        key: str | None,
        connection: Any,
        keys: Sequence[str | None] | None,
        meta: dict[str, Any] | None,
        idempotency_keys: Sequence[str | None] | None,
    ) -> list[Event]:
        """A publish in the transaction of a caller's async connection (a psycopg
        `AsyncConnection`, or SQLAlchemy's async connection or session on psycopg): the
        events and their subscriptions' jobs go through the async driver, as an enqueue on
        such a connection does."""
        if not items:
            return []
        app = self.app
        store = await app.bridge(lambda: app.store)
        await app.bridge(self.ensure)  # records the topic and its subscriptions, once
        news = self._news(items, key, keys, meta, idempotency_keys)
        placed = await store.event_append_async(self.name, news, connection)
        events = [
            _event(self.name, n, p, payload)
            for n, p, payload in zip(news, placed, items, strict=True)
        ]
        fresh = [e for e, p in zip(events, placed, strict=True) if not p.duplicate]
        if self.subscriptions and fresh:
            jobs = [subscription_job(sub, e) for sub in self.subscriptions for e in fresh]
            admitted = await app.bridge(app.admission.admit, jobs)
            await store.job_insert_many_async(admitted, connection)
        return events

    def _new_event(
        self, payload: Any, key: str | None, meta: dict[str, Any], idem: str | None = None
    ) -> NewEvent:
        if key is not None:
            if not isinstance(key, str):
                raise InvalidArgumentsError(f"an event's key must be text, got {key!r}", "key")
            if len(key) > MAX_KEY or "\x00" in key:
                raise InvalidArgumentsError(
                    f"an event's key is text of at most {MAX_KEY} characters without NUL", "key"
                )
        limit = self.app.config.max_payload_bytes
        text = args_json({"payload": payload}, f"event of topic {self.name!r}", limit)
        payload_json = text[len('{"payload":') : -1]
        if idem is not None and (
            not isinstance(idem, str) or not 0 < len(idem) <= MAX_KEY or "\x00" in idem
        ):
            raise InvalidArgumentsError(
                f"an idempotency key is text of 1 to {MAX_KEY} characters without NUL",
                "idempotency_key",
            )
        # Without a key, a retry with the same idempotency key goes where the first went.
        part = partition_for(key if key is not None or idem is None else idem, self.partitions)
        return NewEvent(part, key, payload_json, json.dumps(meta, separators=(",", ":")), idem)

    def _append(
        self, tx: Store, news: list[NewEvent], payloads: list[Any]
    ) -> list[tuple[Event, bool]]:
        self.ensure(tx)
        if self._unrecorded():
            self.record_subscriptions(tx)  # before the append: every partition held first
        placed = tx.event_append(self.name, news)
        triples = zip(news, placed, payloads, strict=True)
        events = [_event(self.name, n, p, payload) for n, p, payload in triples]
        fresh = [e for e, p in zip(events, placed, strict=True) if not p.duplicate]
        if self.subscriptions and fresh:
            jobs: list[NewJob] = []
            for sub in self.subscriptions:
                for e in fresh:
                    jobs.append(subscription_job(sub, e))
            self.app.admit_and_store(jobs, connection=tx)
        return [(e, p.duplicate) for e, p in zip(events, placed, strict=True)]

    # --- reading ---------------------------------------------------------------------
    def read(self, partition: int, after: int = -1, limit: int = 100) -> list[Event]:
        """Up to `limit` events of a partition with offsets above `after` (-1: from the
        first kept event), in offset order."""
        self._check_partition(partition)
        self.ensure()
        stored = self.app.store.event_read(self.name, partition, int(after), int(limit))
        return [Event.of(s) for s in stored]

    def offset_at(self, partition: int, since: datetime | float) -> int:
        """The offset of the partition's first kept event published at or after `since`."""
        self._check_partition(partition)
        when = since.timestamp() if isinstance(since, datetime) else float(since)
        return self.app.store.event_offset_at(self.name, partition, when)

    def heads(self) -> dict[int, int]:
        """Each partition's head: the offset its next event gets."""
        self.ensure()
        return {p.part: p.head for p in self.app.store.partition_list(self.name)}

    def _check_partition(self, partition: int) -> None:
        if isinstance(partition, bool) or not isinstance(partition, int):
            raise InvalidArgumentsError(f"a partition is an integer, got {partition!r}")
        if not 0 <= partition < self.partitions:
            raise InvalidArgumentsError(
                f"topic {self.name!r} has partitions 0..{self.partitions - 1}, not {partition}"
            )

    # --- replay ----------------------------------------------------------------------
    def replay(
        self,
        group: str,
        *,
        from_offset: int | None = None,
        since: datetime | float | None = None,
    ) -> dict[int, int]:
        """Reset a consumer group (or re-deliver to a subscription, by its name) so that the
        events from an offset (in every partition) or from a time flow again; the offset each
        partition starts from. A subscription gets one new job per event."""
        return replay(self, group, from_offset=from_offset, since=since)


def subscription_job(sub: JobType, event: Event) -> NewJob:
    """The job that runs a subscription for one event."""
    prepared = sub.prepare_plain({"event": event.to_json()})
    new = prepared.new
    meta = {**new.meta, "event": f"{event.topic}/{event.partition}/{event.offset}"}
    if "correlation_id" in event.meta:
        meta["correlation_id"] = event.meta["correlation_id"]
    return replace(new, meta=meta)


def _event(topic: str, new: NewEvent, placed: Placed, payload: Any) -> Event:
    return Event(
        topic,
        placed.part,
        placed.position,
        new.key,
        check_json(payload, "an event's payload"),
        datetime.fromtimestamp(placed.published_at, UTC),
        json.loads(new.meta_json),
    )


def _meta(given: dict[str, Any] | None, context: dict[str, Any]) -> dict[str, Any]:
    """An event's meta: what the publisher gives, then what the publishing context adds (the
    job that published it and its correlation id), and a correlation id (a new one when
    neither has one)."""
    meta = dict(check_json(given or {}, "an event's meta"))
    for k, v in context.items():
        meta.setdefault(k, v)
    meta.setdefault("correlation_id", uuid.uuid4().hex)
    return meta


def _is_async(connection: Any) -> bool:
    return inspect.iscoroutinefunction(getattr(connection, "execute", None))


def find_topic(app: Offload, name: str) -> Topic | None:
    """The topic `name` as the app declares it, else as the store holds it (for commands and
    the API run without the app's code: no subscriptions then); None when neither has it."""
    declared = app.topics.get(name)
    if declared is not None:
        return declared
    for spec in app.store.topic_specs():
        if spec.name == name:
            topic = Topic(
                app, spec.name, spec.partitions, spec.retention_seconds, spec.retention_events
            )
            topic._ensured = True  # it is there: never written from here
            return topic
    return None
