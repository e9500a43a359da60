"""Dataset storage through fsspec: local paths, ``file://``, ``s3://``, ``gs://``, ``memory://``.

A :class:`Store` pickles as its URL alone, so tasks carry it to any worker; credentials and
endpoints come from the standard chains (``AWS_*`` variables and files, ``AWS_ENDPOINT_URL``,
Google application-default credentials, ``STORAGE_EMULATOR_HOST``, fsspec's ``FSSPEC_S3`` /
``FSSPEC_GS`` configuration).  Every write is atomic: on a local disk a temporary file is renamed
into place; on object stores each object is one upload that the store publishes whole or not at
all.  A reader therefore sees a whole object or none, which is what lets a killed run resume by
skipping the keys that exist.

Object-store operations that fail transiently (HTTP 5xx, 429, connection resets, timeouts) are
retried with exponential backoff and jitter, ``NGSHOW_STORE_RETRIES`` times at most (default 8,
about 40 s of waiting in all); errors that retrying cannot fix (missing keys, denied access, bad
requests) are raised at once.
"""

from __future__ import annotations

import logging
import os
import posixpath
import random
import shutil
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Store", "WORK_PREFIX", "is_transient"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: First wait before retrying a failed object-store operation; doubled each time, at most 10 s.
BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 10.0

#: Keys under this prefix are the pipeline's bookkeeping (temporary files, task markers).
WORK_PREFIX = ".ngshow"
_TMP = f"{WORK_PREFIX}/tmp"


def _attempts() -> int:
    try:
        return max(1, int(os.environ.get("NGSHOW_STORE_RETRIES", "8")) + 1)
    except ValueError:
        return 9


def is_transient(error: BaseException) -> bool:
    """Whether retrying might help: server errors, throttling, resets and timeouts, not a missing
    key, denied access or a malformed request."""
    if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)):
        return False
    if isinstance(error, (TypeError, ValueError, AttributeError, KeyError, NotImplementedError, AssertionError, Warning)):
        return False
    if "Credential" in type(error).__name__:  # botocore's NoCredentialsError, PartialCredentialsError
        return False
    for name in ("code", "status", "status_code"):
        status = getattr(error, name, None)
        if isinstance(status, int) and 400 <= status < 500:
            return status in (408, 429)
    return isinstance(error, Exception)


def _normalise(url: str | os.PathLike[str]) -> str:
    text = os.fspath(url)
    if text.startswith("precomputed://"):
        text = text[len("precomputed://") :]
    if "://" not in text:
        text = os.path.abspath(os.path.expanduser(text))
    return text.rstrip("/") or "/"


class Store:
    """Keys (``/``-separated) below one root URL.

    Parameters
    ----------
    url
        A local path or an fsspec URL.  Cloud protocols need their fsspec package (``s3fs``,
        ``gcsfs``).
    """

    def __init__(self, url: str | os.PathLike[str]) -> None:
        self.url = _normalise(url)
        self._fs: Any = None
        self._root = ""
        self._local = False

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Store) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def _open(self) -> Any:
        if self._fs is None:
            if "://" not in self.url or self.url.startswith("file://"):
                self._local = True
                self._root = self.url[len("file://") :] if self.url.startswith("file://") else self.url
                self._fs = "local"
            else:
                import fsspec

                fs, root = fsspec.core.url_to_fs(self.url)
                self._fs, self._root = fs, root.rstrip("/")
        return self._fs

    def _retrying(self, what: str, key: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried with backoff while it fails transiently."""
        attempts = _attempts()
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except Exception as e:
                if attempt == attempts or not is_transient(e):
                    raise
                wait = min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                log.warning(
                    "%s of %s/%s failed (%s: %s); retry %d of %d in %.1f s",
                    what, self.url, key, type(e).__name__, e, attempt, attempts - 1, wait,
                )
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def is_local(self) -> bool:
        """True for local paths (written through the OS, renamed atomically)."""
        self._open()
        return self._local

    def path(self, key: str) -> str:
        """The filesystem path (or bucket path) of ``key``."""
        self._open()
        return posixpath.join(self._root, key) if key else self._root

    def exists(self, key: str) -> bool:
        fs = self._open()
        if self._local:
            return os.path.isfile(self.path(key))
        return self._retrying("existence check", key, lambda: self._remote_isfile(key))

    def _remote_isfile(self, key: str) -> bool:
        try:
            info = self._fs.info(self.path(key), refresh=True)  # not a stale listing
        except FileNotFoundError:
            return False
        return bool(info.get("type") == "file")

    def get(self, key: str) -> bytes | None:
        """The bytes at ``key``, or None if it does not exist."""
        fs = self._open()
        try:
            if self._local:
                with open(self.path(key), "rb") as f:
                    return f.read()
            return self._retrying("read", key, lambda: bytes(fs.cat_file(self.path(key))))
        except FileNotFoundError:
            return None

    def size(self, key: str) -> int:
        """The size of ``key`` in bytes; FileNotFoundError if it does not exist."""
        fs = self._open()
        if self._local:
            if not os.path.isfile(self.path(key)):
                raise FileNotFoundError(self.path(key))
            return os.path.getsize(self.path(key))
        info = self._retrying("size", key, lambda: fs.info(self.path(key)))
        if info.get("type") != "file":
            raise FileNotFoundError(self.path(key))
        return int(info["size"])

    def get_range(self, key: str, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` at ``key`` (fewer past its end), or None if it does not exist."""
        fs = self._open()
        try:
            if self._local:
                with open(self.path(key), "rb") as f:
                    f.seek(start)
                    return f.read(max(0, end - start))
            return self._retrying("read", key, lambda: bytes(fs.cat_file(self.path(key), start=start, end=end)))
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically (replacing what was there)."""
        fs = self._open()
        target = self.path(key)
        if not self._local:
            # One upload: the store publishes the object whole or not at all, so retrying after
            # an ambiguous failure (a reset after the upload landed) rewrites the same bytes.
            payload = bytes(data)
            self._retrying("write", key, lambda: fs.pipe_file(target, payload))
            return
        tmp_dir = self.path(_TMP)
        os.makedirs(tmp_dir, exist_ok=True)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = os.path.join(tmp_dir, uuid.uuid4().hex)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write ``data`` unless ``key`` exists; True if written.

        Two workers racing on one key both write the same bytes (tasks are deterministic), so a
        check-then-write is enough.
        """
        if self.exists(key):
            return False
        self.put(key, data)
        return True

    def delete(self, key: str) -> None:
        fs = self._open()
        try:
            if self._local:
                os.unlink(self.path(key))
            else:
                self._retrying("delete", key, lambda: fs.rm_file(self.path(key)))
        except FileNotFoundError:
            pass

    def list(self, prefix: str) -> dict[str, int]:
        """Names (relative to the folder ``prefix``) and sizes of the files directly in it."""
        fs = self._open()
        base = self.path(prefix)
        if self._local:
            try:
                with os.scandir(base) as it:
                    return {e.name: e.stat().st_size for e in it if e.is_file()}
            except FileNotFoundError:
                return {}
        try:
            entries = self._retrying("listing", prefix, lambda: fs.ls(base, detail=True, refresh=True))
        except FileNotFoundError:
            return {}
        out: dict[str, int] = {}
        for e in entries:
            if e.get("type") == "file":
                out[posixpath.basename(e["name"].rstrip("/"))] = int(e.get("size") or 0)
        return out

    def remove_folder(self, prefix: str) -> None:
        """Delete everything under the folder ``prefix`` (nothing if it does not exist)."""
        fs = self._open()
        if self._local:
            shutil.rmtree(self.path(prefix), ignore_errors=True)
            return
        try:
            fs.rm(self.path(prefix), recursive=True)
        except FileNotFoundError:
            pass

    def clear_temporary(self) -> None:
        """Remove temporary files a killed run left behind (driver only, before tasks start)."""
        self._open()
        if self._local:
            shutil.rmtree(self.path(_TMP), ignore_errors=True)
