-- Named queries of the SQLite engine for searching jobs and acting on many at once
-- (offload/store/sqlite/_bulk.py, offload/store/_bulk.py). `{match}` in a query stands for
-- the fragment `match`, put in when the queries are loaded.

-- name: match
-- What a JobMatch says, every filter optional (NULL: any). Texts are matched as substrings
-- with instr(), so no character of them is a wildcard; lower() folds ASCII letters. The
-- error is the message of the last entry of the job's errors, when they are valid JSON.
(:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:kind IS NULL OR kind = :kind)
  AND (:queue IS NULL OR queue = :queue)
  AND (:inserted_since IS NULL OR inserted_at >= :inserted_since)
  AND (:inserted_until IS NULL OR inserted_at < :inserted_until)
  AND (:finished_since IS NULL OR finished_at >= :finished_since)
  AND (:finished_until IS NULL OR finished_at < :finished_until)
  AND (:args IS NULL OR instr(lower(args), lower(:args)) > 0)
  AND (:error IS NULL OR instr(lower(
        CASE WHEN json_valid(errors) AND json_type(errors) = 'array'
             THEN json_extract(errors, '$[#-1].error') END), lower(:error)) > 0)

-- name: search_page
-- A page of matching job ids, newest first.
SELECT id FROM offload_jobs
WHERE {match}
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit

-- name: id_range
-- Below the first id and the last id: the ids a bulk operation walks (the jobs there when it began).
SELECT coalesce(min(id), 1) - 1, coalesce(max(id), 0) FROM offload_jobs

-- name: bulk_count
SELECT count(*) FROM offload_jobs WHERE id > :after AND id <= :upto AND {match}

-- name: bulk_ids
-- The next batch of matching jobs, by id, in the window of ids after :after up to :upto.
SELECT id FROM offload_jobs
WHERE id > :after AND id <= :upto AND {match}
ORDER BY id
LIMIT :batch

-- name: bulk_retry
-- job_retry (queries.sql) for a batch of ids: available now, one more attempt if needed, and
-- its start tag moved up to its lane's head.
UPDATE offload_jobs
SET state = 'available', scheduled_at = :now, deadline = :now + slo, finished_at = NULL,
    result = NULL, max_attempts = max(max_attempts, attempt + 1),
    start_tag = max(coalesce(start_tag, 0), coalesce((
        SELECT v.head FROM offload_lane_heads AS v
        WHERE v.queue = offload_jobs.queue AND v.priority = offload_jobs.priority), 0))
WHERE id IN (SELECT value FROM json_each(:ids))
  AND state IN (SELECT value FROM json_each(:states))

-- name: bulk_cancel
-- job_cancel (queries.sql) for a batch of ids.
UPDATE offload_jobs SET state = 'cancelled', finished_at = :now
WHERE id IN (SELECT value FROM json_each(:ids))
  AND state IN (SELECT value FROM json_each(:states))

-- name: bulk_discard
-- job_discard (totals.sql) for a batch of ids: what they counted goes to the totals. Names
-- come back as blobs, so that a damaged one (not UTF-8) cannot stop the discard.
DELETE FROM offload_jobs
WHERE id IN (SELECT value FROM json_each(:ids))
  AND state IN (SELECT value FROM json_each(:states))
RETURNING CAST(queue AS BLOB), CAST(kind AS BLOB), state, attempt
