-- Named queries of the SQLite engine for event totals and discarding jobs
-- (offload/store/sqlite/_totals.py, offload/store/_totals.py).

-- name: job_totals
-- One statement, so one snapshot: the rows as they are (state, jobs, starts), from the kept
-- counts (0015_counts.sql), and the totals kept for deleted rows and reported events (state
-- NULL).
SELECT queue, kind, state, jobs, attempts FROM offload_counts WHERE jobs <> 0
UNION ALL
SELECT queue, kind, NULL, event, value FROM offload_totals

-- name: totals_add
INSERT INTO offload_totals (queue, kind, event, value) VALUES (?, ?, ?, ?)
ON CONFLICT (queue, kind, event) DO UPDATE SET value = value + excluded.value

-- name: job_discard
DELETE FROM offload_jobs WHERE id = ?
RETURNING queue, kind, state, attempt
