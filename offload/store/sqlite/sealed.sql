-- Named queries of the SQLite engine for re-encrypting stored jobs (offload/store/_sealed.py).

-- name: job_sealed_page
-- Columns as blobs (offload/store/_codec.py decodes them): exactly what the store holds, to
-- compare when writing back.
SELECT id, CAST(kind AS BLOB), CAST(args AS BLOB), CAST(result AS BLOB), CAST(meta AS BLOB)
FROM offload_jobs
-- (a damaged meta, not JSON, is passed over rather than failing the page)
WHERE id > :after
  AND CASE WHEN json_valid(meta) THEN json_extract(meta, '$."offload.encrypted"') END IS NOT NULL
ORDER BY id
LIMIT :limit

-- name: job_reseal
UPDATE offload_jobs SET args = :args, result = :result
WHERE id = :id AND CAST(args AS BLOB) = :old_args AND CAST(result AS BLOB) IS :old_result
