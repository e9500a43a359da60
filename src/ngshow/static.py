"""Where the bundled Neuroglancer client lives, and how its files are served."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ClientNotBuilt, NotFound

__all__ = ["StaticFiles", "default_static_dir", "content_type"]

_CONTENT_TYPES = {
    ".js": "application/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".wasm": "application/wasm",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
}

# Flat names only: nothing with a slash, and nothing starting with a dot, so ".." can never match.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

BUILD_HINT = (
    "the Neuroglancer client bundle is missing from {where}. Install ngshow with "
    "`pip install .` from a checkout (it runs npm and esbuild), or build it in place with "
    "`make client`, or point NGSHOW_STATIC_DIR at a built bundle."
)


def default_static_dir() -> Path:
    """``$NGSHOW_STATIC_DIR`` if set, else the ``static`` folder inside the installed package."""
    env = os.environ.get("NGSHOW_STATIC_DIR")
    return Path(env) if env else Path(__file__).with_name("static")


def content_type(name: str) -> str:
    """The MIME type the client needs for a static file (workers need a JavaScript type)."""
    return _CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


class StaticFiles:
    """The client's files in one flat folder, read once and kept in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        if not (folder / "index.html").is_file() or not (folder / "main.bundle.js").is_file():
            raise ClientNotBuilt(BUILD_HINT.format(where=folder))
        self._names = {p.name for p in folder.iterdir() if p.is_file() and _SAFE_NAME.match(p.name)}
        self._cache: dict[str, bytes] = {}

    def get(self, name: str) -> bytes:
        """The bytes of one file; :class:`NotFound` for anything outside the bundle."""
        name = name or "index.html"
        if name not in self._names:
            raise NotFound(f"no such file in the client bundle: {name!r}")
        data = self._cache.get(name)
        if data is None:
            data = self._cache[name] = (self.folder / name).read_bytes()
        return data
