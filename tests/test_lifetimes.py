"""How long things live: closed tabs stop counting at once, event streams are capped, scripts can
wait for their viewers (Ctrl-C ends cleanly), and a script that ends without waiting says why."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from urllib.parse import urlsplit

import pytest

import ngshow
from ngshow.server import MAX_EVENT_STREAMS

from .conftest import request


def open_stream(viewer: ngshow.Viewer, client: str) -> tuple[socket.socket, bytes]:
    """A raw event-stream connection; returns the socket and the response head."""
    parts = urlsplit(viewer.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(
        f"GET /events/{viewer.token}?c={client}&gs=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def wait_until(condition: object, limit: float = 10.0) -> float:
    """Seconds until ``condition()`` holds (fails after ``limit``, generous for a loaded machine)."""
    t0 = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - t0 < limit, "condition never held"
        time.sleep(0.01)
    return time.monotonic() - t0


def test_closed_streams_leave_connected_clients_and_streams_are_capped(viewer: ngshow.Viewer) -> None:
    sock, head = open_stream(viewer, "one")
    assert head.startswith(b"HTTP/1.1 200")
    wait_until(lambda: viewer.connected_clients() == 1)
    sock.close()
    # Noticed by polling the connection every GONE_POLL_SECONDS (0.25 s), not at the next
    # 15-second heartbeat.
    wait_until(lambda: viewer.connected_clients() == 0, limit=5.0)

    streams = [open_stream(viewer, f"c{i}") for i in range(MAX_EVENT_STREAMS)]
    assert all(head.startswith(b"HTTP/1.1 200") for _, head in streams)
    extra, head = open_stream(viewer, "extra")
    assert head.startswith(b"HTTP/1.1 429")
    extra.close()
    assert viewer.connected_clients() == MAX_EVENT_STREAMS
    other = ngshow.Viewer()  # the cap is per viewer
    s2, head = open_stream(other, "x")
    assert head.startswith(b"HTTP/1.1 200")
    s2.close()
    streams.pop()[0].close()
    wait_until(lambda: viewer.connected_clients() == MAX_EVENT_STREAMS - 1, limit=5.0)
    again, head = open_stream(viewer, "again")
    assert head.startswith(b"HTTP/1.1 200")
    again.close()
    for s, _ in streams:
        s.close()
    wait_until(lambda: viewer.connected_clients() == 0, limit=5.0)
    assert request(viewer.url).status == 200  # the server is fine


def test_wait_returns_when_the_viewer_closes() -> None:
    viewer = ngshow.Viewer()
    try:
        assert viewer.wait(timeout=0.2) is False
        threading.Timer(0.2, viewer.close).start()
        assert viewer.wait() is True and viewer.closed
    finally:
        ngshow.stop()


def run_script(code: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )


@pytest.mark.parametrize("ending", ["viewer.wait()", "ngshow.serve_forever()"])
def test_ctrl_c_ends_a_waiting_script_cleanly(ending: str) -> None:
    proc = run_script(
        f"""
        import numpy as np, ngshow
        viewer = ngshow.show(np.zeros((4, 4, 4), np.uint8))
        print(viewer.url, flush=True)
        {ending}
        print("after:", viewer.closed, flush=True)
        """
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert request(url).status == 200  # still serving while the script waits
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "after: True"
    assert "Traceback" not in err and "ngshow: the script ended" not in err


def test_a_script_ending_with_open_viewers_says_why_they_stop() -> None:
    proc = run_script(
        """
        import numpy as np, ngshow
        ngshow.show(np.zeros((4, 4, 4), np.uint8))
        ngshow.show(np.zeros((4, 4, 4), np.uint8))
        """
    )
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "ngshow: the script ended, so its 2 viewers stop too" in err
    assert "viewer.wait()" in err
    closed = run_script(
        """
        import numpy as np, ngshow
        ngshow.show(np.zeros((4, 4, 4), np.uint8)).close()
        """
    )
    _out, err = closed.communicate(timeout=60)
    assert closed.returncode == 0 and "ngshow:" not in err
