"""The embedded run store's server: fakeredis' TCP server, whose replies wait for a slow reader.

In: nothing (run as ``python -m replay.fake_server`` by ``replay.store.EmbeddedServer``). Out: the
port it listens on (loopback), on the first line of stdout; then it serves until terminated.

Why not ``TcpFakeServer`` as it is: fakeredis (2.40) puts each client's socket in non-blocking
mode to poll for commands, then writes a reply with ``sendall``. A reply larger than the socket
buffers hold, to a client that has not read yet (a shard busy between two reads of a checkpoint),
fails with ``BlockingIOError`` and the server drops the connection: the run stopped with "the run
store went away mid-run" (a 29-day local replay of 20 machines: 3 runs of 8). Here the handler writes
through ``_PatientWriter``, which waits until the socket takes more, as a blocking write would.
"""

from __future__ import annotations

import select
import socket

from fakeredis import TcpFakeServer
from fakeredis._clients._tcp_server import TCPFakeRequestHandler

WAIT_S = 1.0  #: longest wait for a full socket to drain before trying again (a closed peer ends it)


class _PatientWriter:
    """What a handler writes its replies to: all of each reply, waiting while the socket is full."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> int:
        """Send every byte of ``data``; ``ConnectionError`` if the client went away."""
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:  # the buffers are full: wait for the client to read
                select.select([], [self.sock], [], WAIT_S)
                continue
            view = view[sent:]
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""


class _Handler(TCPFakeRequestHandler):
    """fakeredis' request handler with its replies written by ``_PatientWriter``."""

    def setup(self) -> None:
        super().setup()
        self.writer.writer = _PatientWriter(self.connection)  # type: ignore[assignment]  # (write, flush)


def main() -> None:
    """Serve on a free loopback port until terminated, printing the port first."""
    # Ctrl-C reaches the whole foreground group: the run that started the server says what happened, so the
    # server stops without a word, wherever the signal finds it (printing its port included: the reader may
    # already have the port when the interrupt is raised, as the print returns)
    try:
        srv = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
        srv.RequestHandlerClass = _Handler
        print(srv.server_address[1], flush=True)
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
