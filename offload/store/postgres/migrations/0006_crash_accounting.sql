-- Crash accounting: which held jobs had started when their worker was lost.
--
-- held_token  the lease token of the claim that holds the job without its start being recorded:
--             claimed ahead into a worker's buffer, or started since its last cycle. A claim
--             sets it (NULL for the jobs that go straight into free slots) and a worker's cycle
--             clears it for the jobs it has started since; it means something only while it
--             equals lease_token, so a claim that does not know of it leaves a stale value that
--             reads as "started" (the rescue then charges a crash, as it always did).
-- isolated    true once the job was held by a lost worker: it runs alone in its worker process
--             from then on, so that a job that crashes its process takes no neighbour with it.
-- Both are added without a table rewrite (a nullable column, a constant default).
ALTER TABLE offload_jobs ADD COLUMN held_token bigint;
ALTER TABLE offload_jobs ADD COLUMN isolated boolean NOT NULL DEFAULT false;
