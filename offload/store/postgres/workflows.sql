-- Named queries of the PostgreSQL engine's workflows family (offload/store/_workflows.py).

-- name: wf_insert
INSERT INTO {schema}.offload_workflows (kind, name, state, inserted_at, updated_at)
VALUES (%(kind)s, %(name)s, 'running', {schema}.offload_now(), {schema}.offload_now())
RETURNING id

-- name: wf_step_insert
INSERT INTO {schema}.offload_workflow_steps (workflow_id, name, position, role, depends_on,
                                             undo_of, kind, spec)
VALUES (%(workflow_id)s, %(name)s, %(position)s, %(role)s, %(depends_on)s::jsonb, %(undo_of)s,
        %(kind)s, %(spec)s::jsonb)

-- name: wf_lock
-- Locked in id order: transactions that advance several workflows never deadlock, and two
-- that end the last two steps of one (a group's members) advance it one after the other, the
-- second seeing the first's commit.
SELECT id, kind, state, cancel_requested FROM {schema}.offload_workflows
WHERE id = ANY(%(ids)s::bigint[])
ORDER BY id
FOR UPDATE

-- name: wf_lock_of_jobs
-- `wf_lock` of the workflows whose steps these jobs are: one statement finds and locks them.
SELECT id, kind, state, cancel_requested FROM {schema}.offload_workflows
WHERE id = ANY(ARRAY(SELECT workflow_id FROM {schema}.offload_workflow_steps
                     WHERE job_id = ANY(%(ids)s::bigint[])))
ORDER BY id
FOR UPDATE

-- name: wf_seen
-- The steps of locked workflows (all of them: one statement), read after the lock so that
-- they include what the transactions that held it committed. The plan reads the state of the
-- jobs its steps wait for (`created`) only: a look-up by id each, whatever plan the array of
-- ids gets (a join may walk the jobs' index instead).
SELECT s.workflow_id, s.name, s.position, s.role, s.depends_on, s.undo_of, s.state, s.job_id,
       CASE WHEN s.state = 'created'
            THEN (SELECT j.state FROM {schema}.offload_jobs AS j WHERE j.id = s.job_id) END
FROM {schema}.offload_workflow_steps AS s
WHERE s.workflow_id = ANY(%(ids)s::bigint[])
ORDER BY s.workflow_id, s.position

-- name: wf_specs
SELECT s.workflow_id, s.name, s.spec
FROM {schema}.offload_workflow_steps AS s
JOIN unnest(%(ids)s::bigint[], %(names)s::text[]) AS v(id, name)
  ON s.workflow_id = v.id AND s.name = v.name

-- name: wf_step_end
-- Steps whose job ended, of several workflows. The result is copied from the job (kept when
-- the job is pruned).
UPDATE {schema}.offload_workflow_steps AS s
SET state = v.state,
    result = CASE WHEN v.state = 'completed'
                  THEN (SELECT j.result FROM {schema}.offload_jobs AS j WHERE j.id = s.job_id)
             END
FROM unnest(%(ids)s::bigint[], %(names)s::text[], %(states)s::text[]) AS v(id, name, state)
WHERE s.workflow_id = v.id AND s.name = v.name AND s.state = 'created'

-- name: wf_step_made
UPDATE {schema}.offload_workflow_steps AS s SET state = 'created', job_id = v.job_id
FROM unnest(%(ids)s::bigint[], %(names)s::text[], %(job_ids)s::bigint[]) AS v(id, name, job_id)
WHERE s.workflow_id = v.id AND s.name = v.name AND s.state = 'pending'

-- name: wf_state
UPDATE {schema}.offload_workflows AS w
SET state = v.state, updated_at = {schema}.offload_now(),
    finished_at = CASE WHEN v.state IN ('completed', 'failed', 'compensated', 'cancelled')
                       THEN {schema}.offload_now() END
FROM unnest(%(ids)s::bigint[], %(states)s::text[]) AS v(id, state)
WHERE w.id = v.id

-- name: wf_step_reopen
-- A step's ended job made to run again (retried): the step waits for it again.
UPDATE {schema}.offload_workflow_steps SET state = 'created', result = NULL
WHERE job_id = %(id)s AND state IN ('completed', 'dead', 'cancelled', 'shed')
RETURNING workflow_id

-- name: wf_sweep
SELECT DISTINCT s.workflow_id
FROM {schema}.offload_workflow_steps AS s
LEFT JOIN {schema}.offload_jobs AS j ON j.id = s.job_id
WHERE s.state = 'created'
  AND (j.id IS NULL OR j.state IN ('completed', 'dead', 'cancelled', 'shed'))
LIMIT %(limit)s

-- name: wf_get
SELECT id, kind, name, state, inserted_at, updated_at, finished_at, cancel_requested
FROM {schema}.offload_workflows WHERE id = %(id)s

-- name: wf_steps
SELECT name, position, role, depends_on, undo_of, kind, state, job_id, result
FROM {schema}.offload_workflow_steps WHERE workflow_id = %(id)s
ORDER BY position

-- name: wf_list
SELECT id, kind, name, state, inserted_at, updated_at, finished_at, cancel_requested
FROM {schema}.offload_workflows
WHERE (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
  AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s

-- name: wf_counts
SELECT state, count(*) FROM {schema}.offload_workflows GROUP BY state

-- name: wf_cancel_request
UPDATE {schema}.offload_workflows SET cancel_requested = true, updated_at = {schema}.offload_now()
WHERE id = %(id)s AND state = 'running'
RETURNING kind

-- name: wf_running_jobs
-- The jobs of a workflow's steps (not its undo steps) that have not ended, in id order (the
-- order every transaction locks jobs in).
SELECT job_id FROM {schema}.offload_workflow_steps
WHERE workflow_id = %(id)s AND state = 'created' AND role <> 'undo'
ORDER BY job_id

-- name: wf_results
SELECT s.name, s.result FROM {schema}.offload_workflow_steps AS s
WHERE s.workflow_id = %(id)s AND s.state = 'completed'
  AND s.name IN (
      SELECT jsonb_array_elements_text(d.depends_on) FROM {schema}.offload_workflow_steps AS d
      WHERE d.workflow_id = %(id)s AND d.name = %(step)s)

-- name: job_correlate
-- Jobs just inserted by a running job: its id and its root's (docs/workflows.md).
UPDATE {schema}.offload_jobs AS j
SET parent_id = v.parent, root_id = v.root
FROM unnest(%(ids)s::bigint[], %(parents)s::bigint[], %(roots)s::bigint[]) AS v(id, parent, root)
WHERE j.id = v.id AND j.parent_id IS NULL
RETURNING j.id

-- name: job_tree
-- A root job and every job it caused (their root_id is its id), in id order.
SELECT id, parent_id, kind, state FROM {schema}.offload_jobs
WHERE id = %(id)s OR root_id = %(id)s
ORDER BY id
LIMIT %(limit)s

-- name: wf_reopen_stuck
-- Undo jobs of stuck sagas made to run again by a path that does not reopen their step (a
-- bulk retry): their steps wait for them again. Stuck sagas are few.
UPDATE {schema}.offload_workflow_steps AS s SET state = 'created', result = NULL
FROM {schema}.offload_workflows AS w, {schema}.offload_jobs AS j
WHERE w.state = 'stuck' AND s.workflow_id = w.id AND j.id = s.job_id
  AND s.state IN ('dead', 'cancelled', 'shed') AND j.state NOT IN ('dead', 'cancelled', 'shed')
RETURNING s.workflow_id

-- name: wf_any_stuck
SELECT 1 FROM {schema}.offload_workflows WHERE state = 'stuck' LIMIT 1
