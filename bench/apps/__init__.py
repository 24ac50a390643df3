"""Worker-side modules: each system's app with the same no-op job body, `record(i, t)`, and
the `io` job (`bench/_io.py`: one Redis round trip, then `record(i, t)`)."""
