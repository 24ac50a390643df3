"""Worker-side modules: each system's app with the same no-op job body, `record(i, t)`."""
