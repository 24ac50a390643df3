-- Crash accounting: which held jobs had started when their worker was lost.
--
-- held_token  the lease token of the claim that holds the job without its start being recorded:
--             claimed ahead into a worker's buffer, or started since its last cycle. A claim
--             sets it (NULL for the jobs that go straight into free slots) and a worker's cycle
--             clears it for the jobs it has started since; it means something only while it
--             equals lease_token, so a claim that does not know of it leaves a stale value that
--             reads as "started" (the rescue then charges a crash, as it always did).
-- isolated    1 once the job was held by a lost worker: it runs alone in its worker process
--             from then on, so that a job that crashes its process takes no neighbour with it.
ALTER TABLE offload_jobs ADD COLUMN held_token INTEGER;
ALTER TABLE offload_jobs ADD COLUMN isolated INTEGER NOT NULL DEFAULT 0;
