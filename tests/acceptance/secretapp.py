"""An application with a secret argument, for the tests that it is never shown or logged.

Imported in subprocesses as `secretapp:app`; its store is always given with `--url`.
"""

from __future__ import annotations

from offload import Offload

app = Offload(lease_seconds=5.0, maintenance_interval=0.2)


@app.job(max_attempts=1, secret_args=("password",))
def log_in(user: str, password: str) -> None:
    """Fails with an error that quotes its secret argument."""
    raise PermissionError(f"no login for {user} with {password}")
