-- Named queries of the PostgreSQL engine for re-encrypting stored jobs
-- (offload/store/_sealed.py). `{schema}` is the store's schema.

-- name: job_sealed_page
SELECT id, kind, args, result, meta
FROM {schema}.offload_jobs
WHERE id > %(after)s AND meta ? 'offload.encrypted'
ORDER BY id
LIMIT %(limit)s

-- name: job_reseal
UPDATE {schema}.offload_jobs SET args = %(args)s::jsonb, result = %(result)s::jsonb
WHERE id = %(id)s AND args = %(old_args)s::jsonb
  AND result IS NOT DISTINCT FROM %(old_result)s::jsonb
