"""The job application of the version tests (test_versions.py) at one of three versions of its
`greet` job's arguments, as a deploy would have it: `$OFFLOAD_TEST_VERSION` says which (run by
real `offload worker` processes as `tests.integration.versionsapp:app`, its store URL from
`$OFFLOAD_URL`). Each run returns the version of the code that ran it with the greeting.

- version 1: greet(name)
- version 2: greet(first, last) — `name` split in two
- version 3: greet(first, last, punctuation) — punctuation added, "." for older jobs
"""

from __future__ import annotations

import os
from typing import Any

from offload import Offload


def _split(args: dict[str, Any]) -> dict[str, Any]:
    if args["name"] == "explode":
        raise ValueError("no name to split")
    first, _, last = args["name"].partition(" ")
    return {"first": first, "last": last}


def _punctuate(args: dict[str, Any]) -> dict[str, Any]:
    return {**args, "punctuation": "."}


def make_app(url: str | None = None, version: int = 2, grace: float = 3600.0) -> Offload:
    app = Offload(url, lease_seconds=5.0, maintenance_interval=0.2, version_grace=grace)
    options: dict[str, Any] = {"backoff": 0.2, "max_attempts": 3}
    if version == 1:

        @app.job(**options)
        def greet(name: str) -> list[Any]:
            return [1, f"hello {name}"]

    elif version == 2:

        @app.job(version=2, upgrade={2: _split}, **options)
        def greet(first: str, last: str) -> list[Any]:
            return [2, f"hello {first} {last}"]

    else:

        @app.job(version=3, upgrade={2: _split, 3: _punctuate}, **options)
        def greet(first: str, last: str, punctuation: str) -> list[Any]:
            return [3, f"hello {first} {last}{punctuation}"]

    return app


app = make_app(version=int(os.environ.get("OFFLOAD_TEST_VERSION", "2")))
