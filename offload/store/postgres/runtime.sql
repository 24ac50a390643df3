-- Named queries of the PostgreSQL engine for run-time reports by kind
-- (offload/store/postgres/_runtime.py, offload/store/_runtime.py).

-- name: runtime_add
-- One statement for a batch of kinds, stamped with the database's clock.
INSERT INTO {schema}.offload_run_time AS r (
    kind, queue, owner, max_run_time, overruns, overrun_seconds, worst_seconds,
    last_overrun_at, blocks, blocked_seconds, worst_block, last_block_at
)
SELECT u.kind, u.queue, u.owner, u.max_run_time, u.overruns, u.overrun_seconds,
       u.worst_seconds, {schema}.offload_now() - u.overrun_age, u.blocks, u.blocked_seconds,
       u.worst_block, {schema}.offload_now() - u.block_age
FROM unnest(%(kind)s::text[], %(queue)s::text[], %(owner)s::text[],
            %(max_run_time)s::double precision[], %(overruns)s::bigint[],
            %(overrun_seconds)s::double precision[], %(worst_seconds)s::double precision[],
            %(overrun_age)s::double precision[], %(blocks)s::bigint[],
            %(blocked_seconds)s::double precision[], %(worst_block)s::double precision[],
            %(block_age)s::double precision[])
    AS u (kind, queue, owner, max_run_time, overruns, overrun_seconds, worst_seconds,
          overrun_age, blocks, blocked_seconds, worst_block, block_age)
ON CONFLICT (kind) DO UPDATE SET
    queue = excluded.queue,
    owner = excluded.owner,
    max_run_time = excluded.max_run_time,
    overruns = r.overruns + excluded.overruns,
    overrun_seconds = r.overrun_seconds + excluded.overrun_seconds,
    worst_seconds = greatest(r.worst_seconds, excluded.worst_seconds),
    last_overrun_at = greatest(r.last_overrun_at, excluded.last_overrun_at),
    blocks = r.blocks + excluded.blocks,
    blocked_seconds = r.blocked_seconds + excluded.blocked_seconds,
    worst_block = greatest(r.worst_block, excluded.worst_block),
    last_block_at = greatest(r.last_block_at, excluded.last_block_at)

-- name: kind_runtimes
SELECT kind, queue, owner, max_run_time, overruns, overrun_seconds, worst_seconds,
       last_overrun_at, blocks, blocked_seconds, worst_block, last_block_at
FROM {schema}.offload_run_time ORDER BY kind
