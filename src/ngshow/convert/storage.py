"""Dataset storage through fsspec: local paths, ``file://``, ``s3://``, ``gs://``, ``memory://``.

A :class:`Store` pickles as its URL alone, so tasks carry it to any worker.  Every write is atomic:
on a local disk a temporary file is renamed into place; on object stores a single ``put`` is
atomic already.  A reader therefore sees a whole object or none, which is what lets a killed run
resume by skipping the keys that exist.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import uuid
from typing import Any

__all__ = ["Store", "WORK_PREFIX"]

#: Keys under this prefix are the pipeline's bookkeeping (temporary files, task markers).
WORK_PREFIX = ".ngshow"
_TMP = f"{WORK_PREFIX}/tmp"


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
        return bool(fs.isfile(self.path(key)))

    def get(self, key: str) -> bytes | None:
        """The bytes at ``key``, or None if it does not exist."""
        fs = self._open()
        try:
            if self._local:
                with open(self.path(key), "rb") as f:
                    return f.read()
            return bytes(fs.cat_file(self.path(key)))
        except FileNotFoundError:
            return None

    def get_range(self, key: str, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` at ``key`` (fewer past its end), or None if it does not exist."""
        fs = self._open()
        try:
            if self._local:
                with open(self.path(key), "rb") as f:
                    f.seek(start)
                    return f.read(max(0, end - start))
            return bytes(fs.cat_file(self.path(key), start=start, end=end))
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically (replacing what was there)."""
        fs = self._open()
        target = self.path(key)
        if not self._local:
            fs.pipe_file(target, bytes(data))
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
                fs.rm_file(self.path(key))
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
            entries = fs.ls(base, detail=True)
        except FileNotFoundError:
            return {}
        out: dict[str, int] = {}
        for e in entries:
            if e.get("type") == "file":
                out[posixpath.basename(e["name"].rstrip("/"))] = int(e.get("size") or 0)
        return out

    def clear_temporary(self) -> None:
        """Remove temporary files a killed run left behind (driver only, before tasks start)."""
        self._open()
        if self._local:
            shutil.rmtree(self.path(_TMP), ignore_errors=True)
