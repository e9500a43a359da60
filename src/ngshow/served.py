"""What the HTTP server serves: the narrow interface a viewer offers it.

:mod:`ngshow.server` knows viewers and layers only through these protocols, so it imports no viewer
code and data flows one way: sources → encodings → server ← viewer.  :class:`~ngshow.Viewer` hands
the server an adapter that implements :class:`ServedViewer`; its layers implement
:class:`ServedVolume`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .encodings import Body
from .state import SyncedDocument

if TYPE_CHECKING:
    from .convert.storage import Store

__all__ = ["ServedViewer", "ServedVolume"]


class ServedVolume(Protocol):
    """One layer's array, as the data routes need it."""

    @property
    def source(self) -> Any: ...  # the ArraySource the mesher reads

    @property
    def generation(self) -> int: ...

    def info(self) -> dict[str, Any]:
        """The ``python://`` volume info (PROTOCOL.md §3.2)."""
        ...

    def encoded_chunk(self, encoding: str, factors: list[int], start: list[int], end: list[int]) -> Body:
        """One ``python://`` chunk, arguments in the client's dimension order."""
        ...

    def live_file(self, path: str) -> tuple[Any, str]:
        """A file of the layer's live precomputed dataset: body and content type."""
        ...


class ServedViewer(Protocol):
    """One viewer, as the state, action, static and data routes need it."""

    @property
    def token(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    @property
    def documents(self) -> Mapping[str, SyncedDocument]: ...

    @property
    def watchers(self) -> set[asyncio.Event]:
        """One event per open event stream (a connected tab); set to wake it."""
        ...

    def detach(self) -> None:
        """The server is stopping: drop every array and end the event streams."""
        ...

    def page_loaded(self) -> None:
        """A tab (re)loaded the viewer."""
        ...

    def state_changed_by_client(self) -> None:
        """A tab posted a new viewer state."""
        ...

    def dispatch_action(self, name: str, state: dict[str, Any]) -> None:
        """A tab sent an action (a user action, a screenshot)."""
        ...

    def volume(self, token: str) -> ServedVolume:
        """The layer whose volume token is ``token``; :class:`~ngshow.errors.NotFound` otherwise."""
        ...

    def dataset_file(self, token: str, path: str) -> Path:
        """A file of a local precomputed dataset the viewer shows; :class:`~ngshow.errors.NotFound` otherwise."""
        ...

    def remote_dataset(self, token: str) -> Store | None:
        """The object store of an ``s3://``/``gs://`` dataset the viewer serves, or None."""
        ...
