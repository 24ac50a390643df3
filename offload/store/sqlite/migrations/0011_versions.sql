-- Argument versions (offload/store/_versions.py, docs/versions.md): every job holds the
-- version of its arguments, stamped at enqueue; jobs stored before this are version 1.
ALTER TABLE offload_jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
