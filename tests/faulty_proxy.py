"""An HTTP proxy on 127.0.0.1 that answers a share of requests with faults, for object-store tests.

Each request gets its own upstream connection (``Connection: close`` both ways), so faults hit single
requests.  Faults: ``500`` and ``503`` answers, ``reset`` (half the request body is forwarded
upstream, then both connections are reset: an interrupted upload) and ``stall`` (no answer for
``stall_seconds``, then the connection drops).  ``counts`` says how many of each were injected;
``budget`` caps the faults, ``after_fault(kind)`` runs after each reset.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable

FAULTS = ("500", "503", "reset", "stall")


class FaultyProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        weights: tuple[float, ...] | None = None,
        stall_seconds: float = 1.5,
        seed: int = 0,
        budget: int | None = None,
        after_fault: Callable[[str], None] | None = None,
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.rate, self.faults, self.weights = rate, faults, weights
        self.stall_seconds = stall_seconds
        self.budget, self.after_fault = budget, after_fault
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, name="faulty-proxy", daemon=True).start()

    @property
    def injected(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind != "passed")

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _choose(self) -> str:
        with self._lock:
            if self._rng.random() >= self.rate or (self.budget is not None and self.injected >= self.budget):
                kind = "passed"
            else:
                kind = self._rng.choices(self.faults, self.weights)[0]
            self.counts[kind] += 1
            return kind

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            head, rest = _read_head(conn)
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:]) if k}
            if fields.get("expect", "").lower() == "100-continue":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = _read_body(conn, rest, fields)
            kind = self._choose()
            if kind in ("500", "503"):
                text = b"<Error><Code>InternalError</Code><Message>injected fault</Message></Error>"
                reason = "Internal Server Error" if kind == "500" else "Service Unavailable"
                conn.sendall(
                    f"HTTP/1.1 {kind} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(text)}\r\n"
                    "Connection: close\r\n\r\n".encode() + text
                )
                return
            if kind == "stall":
                time.sleep(self.stall_seconds)
                return
            kept = [lines[0]] + [
                line for line in lines[1:] if line and line.split(":")[0].strip().lower() not in ("connection", "expect", "keep-alive")
            ]
            request = ("\r\n".join(kept) + "\r\nConnection: close\r\n\r\n").encode()
            with socket.create_connection(self.upstream, timeout=30) as up:
                if kind == "reset":
                    up.sendall(request + body[: len(body) // 2])
                    time.sleep(0.05)
                    _reset(up)
                    _reset(conn)
                    if self.after_fault is not None:
                        self.after_fault(kind)
                    return
                up.sendall(request + body)
                _relay_response(up, conn)
        except OSError:
            pass
        finally:
            conn.close()


def _reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_head(conn: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _read_body(conn: socket.socket, rest: bytes, fields: dict[str, str]) -> bytes:
    if "chunked" in fields.get("transfer-encoding", "").lower():
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        return rest
    size = int(fields.get("content-length", "0") or 0)
    while len(rest) < size:
        chunk = conn.recv(min(1 << 20, size - len(rest)))
        if not chunk:
            break
        rest += chunk
    return rest


def _relay_response(up: socket.socket, conn: socket.socket) -> None:
    """Copy the upstream's answer, marking it ``Connection: close`` (this proxy serves one request
    per connection), until the upstream closes."""
    head, rest = _read_head(up)
    if head is None:
        return
    lines = [line for line in head.decode("latin-1").split("\r\n") if line.split(":")[0].strip().lower() != "connection"]
    conn.sendall(("\r\n".join(lines) + "\r\nConnection: close\r\n\r\n").encode() + rest)
    while True:
        chunk = up.recv(1 << 20)
        if not chunk:
            return
        conn.sendall(chunk)
