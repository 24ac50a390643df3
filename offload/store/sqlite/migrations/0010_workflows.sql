-- Workflows (offload/store/_workflows.py): chains, groups, graphs and sagas of steps, each step
-- a job made when the steps it depends on have completed.
--
-- offload_workflows       one row per workflow: its kind (chain, group, graph, saga), name,
--                         state, whether a cancel was asked for, and when it changed
-- offload_workflow_steps  one row per step: its place, role (step, on_failure, undo), the
--                         steps it depends on (JSON array of names), the step it undoes, the
--                         job it runs (JSON, made into a job when due), that job's id once
--                         made, its state (pending, created, then its job's end state) and the
--                         result of its job once completed (kept when the job is pruned)
CREATE TABLE offload_workflows (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    name             TEXT,
    state            TEXT    NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    inserted_at      REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    finished_at      REAL
);
CREATE INDEX offload_workflows_state ON offload_workflows (state, id);

CREATE TABLE offload_workflow_steps (
    workflow_id INTEGER NOT NULL REFERENCES offload_workflows (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    role        TEXT    NOT NULL DEFAULT 'step',
    depends_on  TEXT    NOT NULL DEFAULT '[]',
    undo_of     TEXT,
    kind        TEXT    NOT NULL,
    spec        TEXT    NOT NULL,
    job_id      INTEGER,
    state       TEXT    NOT NULL DEFAULT 'pending',
    result      TEXT,
    PRIMARY KEY (workflow_id, name)
) WITHOUT ROWID;
CREATE INDEX offload_workflow_steps_job ON offload_workflow_steps (job_id)
    WHERE job_id IS NOT NULL;
CREATE INDEX offload_workflow_steps_created ON offload_workflow_steps (workflow_id)
    WHERE state = 'created';

-- Correlation: the job that was running when a job was enqueued, and the first job of that
-- chain of causes (its root).
ALTER TABLE offload_jobs ADD COLUMN parent_id INTEGER;
ALTER TABLE offload_jobs ADD COLUMN root_id INTEGER;
CREATE INDEX offload_jobs_root ON offload_jobs (root_id) WHERE root_id IS NOT NULL;
