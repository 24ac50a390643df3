-- Named queries of the SQLite engine for run-time reports by kind
-- (offload/store/sqlite/_runtime.py, offload/store/_runtime.py).

-- name: runtime_add
INSERT INTO offload_run_time AS r (
    kind, queue, owner, max_run_time, overruns, overrun_seconds, worst_seconds,
    last_overrun_at, blocks, blocked_seconds, worst_block, last_block_at
) VALUES (
    :kind, :queue, :owner, :max_run_time, :overruns, :overrun_seconds, :worst_seconds,
    :now - :overrun_age, :blocks, :blocked_seconds, :worst_block, :now - :block_age
)
ON CONFLICT (kind) DO UPDATE SET
    queue = excluded.queue,
    owner = excluded.owner,
    max_run_time = excluded.max_run_time,
    overruns = r.overruns + excluded.overruns,
    overrun_seconds = r.overrun_seconds + excluded.overrun_seconds,
    worst_seconds = max(r.worst_seconds, excluded.worst_seconds),
    last_overrun_at = max(coalesce(r.last_overrun_at, excluded.last_overrun_at),
                          coalesce(excluded.last_overrun_at, r.last_overrun_at)),
    blocks = r.blocks + excluded.blocks,
    blocked_seconds = r.blocked_seconds + excluded.blocked_seconds,
    worst_block = max(r.worst_block, excluded.worst_block),
    last_block_at = max(coalesce(r.last_block_at, excluded.last_block_at),
                        coalesce(excluded.last_block_at, r.last_block_at))

-- name: kind_runtimes
SELECT kind, queue, owner, max_run_time, overruns, overrun_seconds, worst_seconds,
       last_overrun_at, blocks, blocked_seconds, worst_block, last_block_at
FROM offload_run_time ORDER BY kind
