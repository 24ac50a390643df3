"""A small TCP proxy between offload and a PostgreSQL server, with switches for network faults.

No toxiproxy here: an asyncio proxy on a loopback port, run in a thread of its own, forwards
every connection to the server. `freeze()` stops forwarding on the connections open now
without closing them (a half-open connection: the peer answers no more, no FIN, no RST), while
new connections pass; `thaw()` lets the frozen ones go on. `cut_after_commit()` arms a one-shot
trap: the next `COMMIT` a client sends reaches the server, whose reply never reaches the
client; the client's connection is closed instead (an ambiguous commit). `reset()` closes every
connection at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Pipe:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    frozen: asyncio.Event = field(default_factory=asyncio.Event)  # set: do not forward
    thawed: asyncio.Event = field(default_factory=asyncio.Event)
    committed: asyncio.Event = field(default_factory=asyncio.Event)  # the trap caught a COMMIT

    def close(self) -> None:
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class Proxy:
    """Forwards 127.0.0.1:`port` to `target_port`, with fault switches (thread-safe)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0  # accepted since the start
        self.commits_cut = 0
        self._pipes: set[_Pipe] = set()
        self._trap = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    # --- life ---------------------------------------------------------------------
    def start(self) -> Proxy:
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def url(self, dsn_tail: str) -> str:
        """A URL through the proxy: `postgresql://postgres@127.0.0.1:<port>/<dsn_tail>`."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dsn_tail}"

    # --- switches -----------------------------------------------------------------
    def freeze(self) -> int:
        """Stop forwarding on every open connection (new ones still pass); how many."""
        return int(self._call(self._freeze()))

    def thaw(self) -> None:
        self._call(self._thaw())

    def reset(self) -> int:
        """Close every open connection; how many."""
        return int(self._call(self._reset()))

    def cut_after_commit(self) -> None:
        """Arm the trap for the next COMMIT any client sends."""
        self._call(self._arm())

    def open_connections(self) -> int:
        return len(self._pipes)

    # --- inside the loop --------------------------------------------------------------
    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pipe in list(self._pipes):
            pipe.close()
        self._pipes.clear()

    async def _freeze(self) -> int:
        for pipe in self._pipes:
            pipe.frozen.set()
            pipe.thawed.clear()
        return len(self._pipes)

    async def _thaw(self) -> None:
        for pipe in self._pipes:
            pipe.frozen.clear()
            pipe.thawed.set()

    async def _reset(self) -> int:
        pipes = list(self._pipes)
        for pipe in pipes:
            pipe.close()
        return len(pipes)

    async def _arm(self) -> None:
        self._trap = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pipe = _Pipe(writer, up_writer)
        self._pipes.add(pipe)
        try:
            await asyncio.gather(
                self._forward(pipe, reader, up_writer, upstream=True),
                self._forward(pipe, up_reader, writer, upstream=False),
            )
        finally:
            self._pipes.discard(pipe)
            pipe.close()

    async def _forward(
        self,
        pipe: _Pipe,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        upstream: bool,
    ) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                while pipe.frozen.is_set():  # hold the bytes, forward nothing, close nothing
                    await pipe.thawed.wait()
                if not upstream and pipe.committed.is_set():
                    # The server answered the trapped COMMIT: drop the answer, cut the client.
                    self.commits_cut += 1
                    break
                writer.write(data)
                await writer.drain()
                if upstream and self._trap and b"COMMIT" in data.upper():
                    self._trap = False
                    pipe.committed.set()
        except (ConnectionError, OSError):
            pass
        finally:
            pipe.close()


@contextlib.contextmanager
def proxy_to(host: str, port: int) -> Iterator[Proxy]:
    """A started proxy to `host:port`, closed when the block ends."""
    proxy = Proxy(host, port).start()
    try:
        yield proxy
    finally:
        proxy.close()
