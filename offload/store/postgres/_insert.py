"""The PostgreSQL engine's insert (part of the jobs family), as module functions on an
executor: `insert` runs it on a connection, `insert_steps` yields its statements so that the
sync pool, a caller's connection and a caller's async connection run the same logic, and the
maintenance family's cron fires insert through it too.

A batch is one statement per chunk of rows: one job available at once takes `job_insert_one`,
a batch without unique keys or scheduled times one JSON array (`job_insert_rows`), any other
the column arrays of `job_insert`. Jobs with a policy go through the policy family first.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from functools import partial
from typing import Any

from offload.store._codec import dumps
from offload.store._contract import Inserted, NewJob
from offload.store._policy import needs_policy
from offload.store.postgres import _dispatch as dispatch
from offload.store.postgres import _policy as policy
from offload.store.postgres._core import Conn, PostgresCore, Retry
from offload.store.postgres._values import json_text

Steps = Generator[tuple[str, dict[str, Any]], list[Any], list[Inserted]]
JSONB_LIMIT = 200_000_000  # characters of a batch's JSON: a jsonb value holds < 256 MB
CHUNK = 10_000  # rows per insert statement; bigger batches take several, in one transaction


class UniqueRace(Retry):
    """The job holding a unique key vanished between the insert and the look-up of its id."""


def needs_transaction(jobs: Sequence[NewJob]) -> bool:
    """Whether an insert of these jobs takes several statements, so a transaction."""
    several = len(jobs) > CHUNK or any(j.unique_key is not None for j in jobs)
    several = several or needs_policy(jobs)  # its locks and stamps need a transaction
    several = several or any(j.parent_id is not None for j in jobs)  # then correlated
    return several or any(j.limit_key is not None for j in jobs)  # keys declared first


def insert(ex: PostgresCore, c: Conn, jobs: Sequence[NewJob]) -> list[Inserted]:
    """Insert on `c`, in chunks; a job whose unique key is taken gets the holder's id."""
    steps = insert_steps(ex, jobs)
    try:
        query, params = next(steps)
        while True:
            query, params = steps.send(c.execute(query, params).fetchall())
    except StopIteration as done:
        result: list[Inserted] = done.value
        return result


def insert_steps(ex: PostgresCore, jobs: Sequence[NewJob]) -> Steps:
    """The insert as statements to run: yields (query, params), is sent each one's rows,
    and returns the outcome, so that the sync and the async driver run the same logic."""
    inserted = yield from _insert_steps(ex, jobs)
    related = correlated(jobs, inserted)
    if related:  # enqueued by a running job: its id and its root's (docs/workflows.md)
        ids, parents, roots = (list(x) for x in zip(*related, strict=True))
        yield ex._q["job_correlate"], {"ids": ids, "parents": parents, "roots": roots}
    return inserted


def correlated(jobs: Sequence[NewJob], inserted: Sequence[Inserted]) -> list[tuple[int, int, int]]:
    """(id, parent id, root id) of the jobs inserted with a parent (not the duplicates)."""
    if jobs and jobs[0].parent_id is None and all(j.parent_id is None for j in jobs):
        return []
    return [
        (i.id, j.parent_id, j.root_id if j.root_id is not None else j.parent_id)
        for j, i in zip(jobs, inserted, strict=True)
        if j.parent_id is not None and not i.duplicate
    ]


def _insert_steps(ex: PostgresCore, jobs: Sequence[NewJob]) -> Steps:
    if needs_policy(jobs):  # unique, expiring or shed at enqueue: see _policy.py
        return (yield from policy.policy_insert_steps(ex, jobs, partial(_insert_steps, ex)))
    declare = dispatch.limit_declare_step(ex, jobs)  # limit keys' rows
    if declare is not None:
        yield declare
    ids: list[int] = []
    if len(jobs) == 1 and _one_available(jobs[0]):
        rows = yield ex._q["job_insert_one"], _one_params(jobs[0], ex.channel)
        return [Inserted(int(rows[0][0]))]
    if all(j.unique_key is None and j.scheduled_at is None for j in jobs):
        for start in range(0, len(jobs), CHUNK):
            chunk = jobs[start : start + CHUNK]
            params = _rows_params(chunk, ex.channel)
            query = ex._q["job_insert_rows"]
            if len(params["rows"]) > JSONB_LIMIT:  # too big for one jsonb: as arrays
                query, params = ex._q["job_insert"], _insert_params(chunk, ex.channel)
            ids += [int(row[0]) for row in (yield query, params)]
        return [Inserted(job_id) for job_id in ids]
    fresh: list[bool] = []
    for start in range(0, len(jobs), CHUNK):
        params = _insert_params(jobs[start : start + CHUNK], ex.channel)
        for job_id, inserted, _ in (yield ex._q["job_insert"], params):
            ids.append(int(job_id))
            fresh.append(bool(inserted))
    holders: dict[str, int] = {}
    for job, job_id, inserted in zip(jobs, ids, fresh, strict=True):
        if inserted and job.unique_key is not None:
            holders.setdefault(job.unique_key, job_id)
    missing = {j.unique_key for j, ok in zip(jobs, fresh, strict=True) if not ok}
    missing -= holders.keys()
    if missing:
        keys = sorted(k for k in missing if k is not None)
        rows = yield ex._q["job_ids_by_unique"], {"keys": keys}
        holders.update((key, int(job_id)) for key, job_id in rows)
    out = []
    for job, job_id, inserted in zip(jobs, ids, fresh, strict=True):
        if inserted:
            out.append(Inserted(job_id))
        elif job.unique_key in holders:
            out.append(Inserted(holders[job.unique_key], duplicate=True))
        else:
            raise UniqueRace(f"the job holding unique key {job.unique_key!r} vanished")
    return out


def _insert_params(jobs: Sequence[NewJob], channel: str) -> dict[str, Any]:
    """The columns of a batch of jobs as arrays, for the unnest in `job_insert`."""
    return {
        "kind": [j.kind for j in jobs],
        "queue": [j.queue for j in jobs],
        "args": [json_text(j.args, "arguments", j.args_json) for j in jobs],
        "meta": [json_text(j.meta, "meta") if j.meta else "{}" for j in jobs],
        "tenant": [j.tenant for j in jobs],
        "priority": [int(j.priority) for j in jobs],
        "max_attempts": [int(j.max_attempts) for j in jobs],
        "delivery": [j.delivery for j in jobs],
        "timeout": [None if j.timeout is None else float(j.timeout) for j in jobs],
        "at": [None if j.scheduled_at is None else float(j.scheduled_at) for j in jobs],
        "delay": [float(j.delay) for j in jobs],
        "unique_key": [j.unique_key for j in jobs],
        "result_ttl": [float(j.result_ttl) for j in jobs],
        "slo": [None if j.slo is None else float(j.slo) for j in jobs],
        "stride": [float(j.stride) for j in jobs],
        "limit_key": [j.limit_key for j in jobs],
        "penalty": [float(j.penalty) for j in jobs],
        "version": [int(j.version) for j in jobs],
        "channel": channel,
    }


def _one_available(job: NewJob) -> bool:
    """Whether `job_insert_one` takes it: available at once, no unique key."""
    return job.unique_key is None and job.scheduled_at is None and job.delay <= 0


def _one_params(j: NewJob, channel: str) -> dict[str, Any]:
    return {
        "kind": j.kind,
        "queue": j.queue,
        "args": json_text(j.args, "arguments", j.args_json),
        "meta": json_text(j.meta, "meta") if j.meta else "{}",
        "tenant": j.tenant,
        "flow_tenant": j.tenant or "",
        "priority": int(j.priority),
        "max_attempts": int(j.max_attempts),
        "delivery": j.delivery,
        "timeout": None if j.timeout is None else float(j.timeout),
        "delay": float(j.delay),
        "result_ttl": float(j.result_ttl),
        "slo": None if j.slo is None else float(j.slo),
        "stride": float(j.stride),
        "limit_key": j.limit_key,
        "penalty": float(j.penalty),
        "version": int(j.version),
        "channel": channel,
    }


def _rows_params(jobs: Sequence[NewJob], channel: str) -> dict[str, Any]:
    """A batch for `job_insert_rows` (jobs without unique key or scheduled_at): the jobs as
    one JSON array (null fields left out), each available job's flow and offset within it, and
    the flows' demands as arrays (offload/dispatch/_ordering.py)."""
    flows: dict[tuple[str, int, str, str], int] = {}
    flow_of: list[int] = [0] * len(jobs)  # 1-based; 0 for scheduled jobs
    for i, j in enumerate(jobs):
        if j.delay <= 0:
            key = (j.queue, int(j.priority), j.kind, j.tenant or "")
            flow = flows.get(key)
            if flow is None:
                flow = flows[key] = len(flows) + 1
            flow_of[i] = flow
    # Each flow's jobs take consecutive places in the order they became due (then input order).
    order: Sequence[int] = range(len(jobs))
    delays = {j.delay for j in jobs}
    if len(delays) > 1:
        order = sorted(order, key=lambda i: (jobs[i].delay, i))
    added = [0.0] * (len(flows) + 1)
    offsets = [0.0] * len(jobs)
    for i in order:
        flow = flow_of[i]
        if flow:
            offsets[i] = added[flow] + jobs[i].penalty  # the penalty is the job's, not the flow's
            added[flow] += float(jobs[i].stride)
    heads: dict[tuple[Any, ...], str] = {}  # the fields jobs of one type share, as JSON
    parts = []
    for i, j in enumerate(jobs):
        shape = (
            j.kind,
            j.queue,
            j.max_attempts,
            j.delivery,
            j.result_ttl,
            j.tenant,
            j.priority,
            j.timeout,
            j.slo,
            j.stride,
            j.limit_key,
            j.version,
        )
        head = heads.get(shape)
        if head is None:
            head = heads[shape] = _row_head(j)
        row = head + json_text(j.args, "arguments", j.args_json)
        if j.meta:
            row += f',"meta":{json_text(j.meta, "meta")}'
        if j.delay:
            row += f',"delay":{float(j.delay)!r}'
        if flow_of[i]:
            row += f',"flow":{flow_of[i]},"offset":{offsets[i]!r}}}'
        else:
            row += "}"
        parts.append(row)
    keys = list(flows)
    return {
        "rows": "[" + ",".join(parts) + "]",
        "flow_queue": [k[0] for k in keys],
        "flow_priority": [k[1] for k in keys],
        "flow_kind": [k[2] for k in keys],
        "flow_tenant": [k[3] for k in keys],
        "flow_added": added[1:],
        "channel": channel,
    }


def _row_head(j: NewJob) -> str:
    """The start of a job's object in `job_insert_rows`' JSON, up to its arguments."""
    head = (
        f'{{"kind":{dumps(j.kind)},"queue":{dumps(j.queue)},'
        f'"max_attempts":{int(j.max_attempts)},"delivery":{dumps(j.delivery)},'
        f'"result_ttl":{float(j.result_ttl)!r}'
    )
    if j.tenant is not None:
        head += f',"tenant":{dumps(j.tenant)}'
    if j.priority:
        head += f',"priority":{int(j.priority)}'
    if j.timeout is not None:
        head += f',"timeout":{float(j.timeout)!r}'
    if j.slo is not None:
        head += f',"slo":{float(j.slo)!r}'
    if j.stride != 1.0:
        head += f',"stride":{float(j.stride)!r}'
    if j.limit_key is not None:
        head += f',"limit_key":{dumps(j.limit_key)}'
    if j.version != 1:
        head += f',"version":{int(j.version)}'
    return head + ',"args":'
