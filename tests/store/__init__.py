"""The store conformance suite: written once, run against every engine via the `store` fixture."""
