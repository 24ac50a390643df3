"""What PostgreSQL's "insufficient resources" errors mean: the store cannot take a write.

SQLSTATE class 53 is the server refusing work for want of a resource: 53100 its disk is full,
53000 and 53200 it lacks resources or memory, 53400 a configured limit (e.g. `temp_file_limit`)
was reached. The statement was rolled back, so nothing of it was stored; the same operation can
succeed once the resource is back. That is `StoreFullError`. 53300 (too many connections) is
not among them: it happens while connecting, before any operation, and means "wait for a
connection", not "free space".
"""

from __future__ import annotations

import psycopg

from offload._errors import StoreFullError

_REASONS = {  # SQLSTATE: (what is wrong, what to do)
    "53100": ("its disk is full", "free space on the database server's disk"),
    "53200": ("it is out of memory", "give the server memory or wait for its load to drop"),
    "53400": ("a configured limit was reached", "raise the limit the server names"),
}
_OTHER = ("it lacks the resources", "free resources on the database server")


def refused(exc: psycopg.Error, where: str, what: str) -> StoreFullError | None:
    """`StoreFullError` for an error of SQLSTATE class 53 (not 53300); None for any other."""
    code = exc.sqlstate or ""
    if not code.startswith("53") or code == "53300":
        return None
    reason, advice = _REASONS.get(code, _OTHER)
    lines = str(exc).strip().splitlines()
    detail = lines[0] if lines else type(exc).__name__
    return StoreFullError(
        f"PostgreSQL at {where} refused {what}: {reason} (SQLSTATE {code}: {detail}). Nothing "
        f"of this operation was stored; {advice} and try again (workers wait and resume by "
        "themselves)"
    )
