-- Named queries of the SQLite engine's workflows family (offload/store/_workflows.py).

-- name: wf_insert
INSERT INTO offload_workflows (kind, name, state, inserted_at, updated_at)
VALUES (?, ?, 'running', ?, ?)
RETURNING id

-- name: wf_step_insert
INSERT INTO offload_workflow_steps (workflow_id, name, position, role, depends_on, undo_of,
                                    kind, spec)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)

-- name: wf_lock
-- SQLite has one writer: reading the rows is enough.
SELECT id, kind, state, cancel_requested FROM offload_workflows
WHERE id IN (SELECT value FROM json_each(?))
ORDER BY id

-- name: wf_seen
SELECT s.name, s.position, s.role, s.depends_on, s.undo_of, s.state, s.job_id, j.state
FROM offload_workflow_steps AS s
LEFT JOIN offload_jobs AS j ON j.id = s.job_id
WHERE s.workflow_id = ?
ORDER BY s.position

-- name: wf_specs
SELECT name, spec FROM offload_workflow_steps
WHERE workflow_id = ? AND name IN (SELECT value FROM json_each(?))

-- name: wf_step_end
-- The result is copied from the job (kept when the job is pruned).
UPDATE offload_workflow_steps
SET state = ?1,
    result = CASE WHEN ?1 = 'completed'
                  THEN (SELECT j.result FROM offload_jobs AS j WHERE j.id = job_id) END
WHERE workflow_id = ?2 AND name = ?3 AND state = 'created'

-- name: wf_step_made
UPDATE offload_workflow_steps SET state = 'created', job_id = ?
WHERE workflow_id = ? AND name = ? AND state = 'pending'

-- name: wf_state
UPDATE offload_workflows
SET state = ?1, updated_at = ?2,
    finished_at = CASE WHEN ?1 IN ('completed', 'failed', 'compensated', 'cancelled')
                       THEN ?2 END
WHERE id = ?3

-- name: wf_of_jobs
SELECT DISTINCT workflow_id FROM offload_workflow_steps
WHERE job_id IN (SELECT value FROM json_each(?)) AND job_id IS NOT NULL

-- name: wf_step_reopen
-- A step's ended job made to run again (retried): the step waits for it again.
UPDATE offload_workflow_steps SET state = 'created', result = NULL
WHERE job_id = ? AND state IN ('completed', 'dead', 'cancelled', 'shed')
RETURNING workflow_id

-- name: wf_sweep
SELECT DISTINCT s.workflow_id
FROM offload_workflow_steps AS s INDEXED BY offload_workflow_steps_created
LEFT JOIN offload_jobs AS j ON j.id = s.job_id
WHERE s.state = 'created'
  AND (j.id IS NULL OR j.state IN ('completed', 'dead', 'cancelled', 'shed'))
LIMIT ?

-- name: wf_get
SELECT id, kind, name, state, inserted_at, updated_at, finished_at, cancel_requested
FROM offload_workflows WHERE id = ?

-- name: wf_steps
SELECT name, position, role, depends_on, undo_of, kind, state, job_id, result
FROM offload_workflow_steps WHERE workflow_id = ?
ORDER BY position

-- name: wf_list
SELECT id, kind, name, state, inserted_at, updated_at, finished_at, cancel_requested
FROM offload_workflows
WHERE (?1 IS NULL OR state IN (SELECT value FROM json_each(?1)))
  AND (?2 IS NULL OR kind = ?2)
  AND (?3 IS NULL OR id < ?3)
ORDER BY id DESC
LIMIT ?4

-- name: wf_counts
SELECT state, count(*) FROM offload_workflows GROUP BY state

-- name: wf_cancel_request
UPDATE offload_workflows SET cancel_requested = 1, updated_at = ?
WHERE id = ? AND state = 'running'
RETURNING kind

-- name: wf_running_jobs
-- The jobs of a workflow's steps (not its undo steps) that have not ended.
SELECT job_id FROM offload_workflow_steps
WHERE workflow_id = ? AND state = 'created' AND role <> 'undo'

-- name: wf_results
SELECT name, result FROM offload_workflow_steps
WHERE workflow_id = ?1 AND state = 'completed'
  AND name IN (SELECT value FROM json_each((
      SELECT depends_on FROM offload_workflow_steps WHERE workflow_id = ?1 AND name = ?2)))

-- name: job_correlate
-- Jobs just inserted by a running job: its id and its root's (docs/workflows.md). ?1: a JSON
-- array of [id, parent id, root id].
UPDATE offload_jobs
SET parent_id = json_extract(a.value, '$[1]'), root_id = json_extract(a.value, '$[2]')
FROM json_each(?1) AS a
WHERE offload_jobs.id = json_extract(a.value, '$[0]') AND offload_jobs.parent_id IS NULL

-- name: job_tree
-- A root job and every job it caused (their root_id is its id), in id order.
SELECT id, parent_id, kind, state FROM offload_jobs
WHERE id = ?1 OR root_id = ?1
ORDER BY id
LIMIT ?2

-- name: wf_reopen_stuck
-- Undo jobs of stuck sagas made to run again by a path that does not reopen their step (a
-- bulk retry): their steps wait for them again. Stuck sagas are few.
UPDATE offload_workflow_steps SET state = 'created', result = NULL
WHERE workflow_id IN (SELECT id FROM offload_workflows WHERE state = 'stuck')
  AND state IN ('dead', 'cancelled', 'shed')
  AND (SELECT j.state FROM offload_jobs AS j WHERE j.id = offload_workflow_steps.job_id)
      NOT IN ('dead', 'cancelled', 'shed')
RETURNING workflow_id

-- name: wf_any_stuck
SELECT 1 FROM offload_workflows WHERE state = 'stuck' LIMIT 1
