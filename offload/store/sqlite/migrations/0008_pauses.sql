-- Paused queues and job types (offload/store/_pauses.py): their jobs stay queued and are not
-- claimed. A small table that every worker reads at most twice a second.
--
-- scope      'queue' or 'kind'
-- name       the queue's or kind's name
-- paused_by  who paused it (free text: a user, a host), '' when unknown
-- paused_at  when, by the store's clock
-- reason     why, '' when not given
CREATE TABLE offload_pauses (
    scope TEXT NOT NULL CHECK (scope IN ('queue', 'kind')),
    name TEXT NOT NULL,
    paused_by TEXT NOT NULL DEFAULT '',
    paused_at REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (scope, name)
) WITHOUT ROWID;
