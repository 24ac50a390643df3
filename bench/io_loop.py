"""The `io` job body in a plain loop, no queue: the limit a job system's `io` figure is set
against. `python -m bench.io_loop K P N` runs jobs K, K+P, K+2P … below N in this process,
recorded as the workers record them, then waits to be stopped (the harness reads the record).
"""

from __future__ import annotations

import signal
import sys
import time

from bench._io import job


def main(argv: list[str]) -> int:
    k, step, n = (int(a) for a in argv)
    for i in range(k, n, step):
        job(i)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:  # the recorder's thread flushes the last runs; the harness then stops us
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
