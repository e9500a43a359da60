"""Shared fixtures: a real ngshow server on 127.0.0.1 and a small HTTP client for it."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import ngshow


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def request(
    url: str, body: bytes | None = None, method: str | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """One HTTP request; error statuses are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return Reply(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, dict(e.headers), e.read())


def post_json(url: str, value: Any) -> Reply:
    return request(url, json.dumps(value).encode(), method="POST")


@pytest.fixture
def viewer() -> Iterator[ngshow.Viewer]:
    """A fresh viewer on a fresh server, stopped afterwards."""
    v = ngshow.Viewer()
    yield v
    ngshow.stop()


def interrupt(proc: subprocess.Popen[str]) -> int:
    """Ctrl-C a command started with pipes, close its pipes, and return its exit code."""
    try:
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=30)
    finally:
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def base_url(viewer: ngshow.Viewer) -> str:
    return viewer.url.split("/v/")[0]
