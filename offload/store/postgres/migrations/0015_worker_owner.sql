-- Which API token registered a worker over HTTP (docs/security.md): only that token may
-- heartbeat, fetch as, or deregister it. NULL for Python workers and records made before.
ALTER TABLE offload_workers ADD COLUMN owner text;
