"""A TCP proxy in front of the real S3 server that "dies" after forwarding N request bytes.

Fault injection at the network seam: the server is real, only the wire is cut. After the
cut every open connection is reset and new connections are refused.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from urllib.parse import urlparse


class CuttingProxy:
    """``with CuttingProxy("http://127.0.0.1:7070", cut_after=N) as p: p.url …``"""

    def __init__(self, upstream_url: str, *, cut_after: int) -> None:
        u = urlparse(upstream_url)
        self._upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self._cut_after = cut_after
        self._sent = 0
        self._lock = threading.Lock()
        self._dead = threading.Event()
        self._socks: list[socket.socket] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._die()
        self._thread.join(timeout=5)

    def _die(self) -> None:
        self._dead.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                # Linger 0: close with a reset, as a crashed server's kernel would.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()

    def _accept(self) -> None:
        while not self._dead.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        try:
            while not self._dead.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if counted:
                    with self._lock:
                        self._sent += len(data)
                        over = self._sent >= self._cut_after
                    if over:
                        self._die()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
