"""Runs the Python blocks of one page, in order, in one namespace: a block builds on the ones
before it, as a reader following the page would.

Started by the docs runner in the page's folder. Each request is one JSON line on stdin,
`{"code": ..., "where": "README.md:57"}`; the answer is one JSON line on the file descriptor
named by `DOCS_TEST_REPLY_FD`, `{"ok": true}` or `{"ok": false, "error": traceback}`. What the
blocks print goes to this process's stdout and stderr (a log the runner shows on failure).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any


def main() -> None:
    reply = os.fdopen(int(os.environ["DOCS_TEST_REPLY_FD"]), "w", buffering=1)
    sys.path.insert(0, os.getcwd())
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for request in sys.stdin:
        message = json.loads(request)
        where, code = message["where"], message["code"]
        line = int(where.rsplit(":", 1)[1])
        try:
            # Line numbers in tracebacks are the page's: the block starts after its fence.
            page = where.rsplit(":", 1)[0]
            compiled = compile("\n" * line + code, page, "exec", dont_inherit=True)
            exec(compiled, namespace)
            answer: dict[str, Any] = {"ok": True}
        except BaseException:
            answer = {"ok": False, "error": traceback.format_exc()}
        sys.stdout.flush()
        sys.stderr.flush()
        reply.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
