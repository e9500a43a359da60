"""Exceptions raised by ngshow.

Every error derives from :class:`NgshowError` and also from the matching built-in type, so callers can
catch either.  :func:`http_status` is the one place that maps them to HTTP status codes.
"""

from __future__ import annotations

__all__ = [
    "NgshowError",
    "InvalidArray",
    "InvalidRequest",
    "NotFound",
    "ClientNotBuilt",
    "ViewerClosed",
    "Conflict",
    "DtypeConversionWarning",
    "AxesGuessWarning",
    "http_status",
]


class NgshowError(Exception):
    """Base class of every ngshow error."""


class InvalidArray(NgshowError, TypeError):
    """An array (or array-like) that ngshow cannot show: wrong rank, dtype or shape."""


class InvalidRequest(NgshowError, ValueError):
    """A malformed request: bad chunk box, factors, encoding or JSON body."""


class NotFound(NgshowError, KeyError):
    """An unknown viewer token, volume key, static file or object id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Conflict(NgshowError):
    """A browser state update based on a stale generation (HTTP 412)."""


class ClientNotBuilt(NgshowError, FileNotFoundError):
    """The bundled Neuroglancer client (ngshow/static) is missing."""


class ViewerClosed(NgshowError, RuntimeError):
    """The viewer was closed, e.g. by :func:`ngshow.stop`."""


class DtypeConversionWarning(UserWarning):
    """An array's dtype is not one Neuroglancer reads, so ngshow converts it per chunk."""


class AxesGuessWarning(UserWarning):
    """ngshow guessed what an array's axes are (pass ``axes=`` to say)."""


_STATUS: list[tuple[type[BaseException], int]] = [
    (InvalidRequest, 400),
    (InvalidArray, 400),
    (NotFound, 404),
    (Conflict, 412),
    (ViewerClosed, 410),
]


def http_status(error: BaseException) -> int:
    """The HTTP status code for ``error`` (500 for anything that is not an :class:`NgshowError`)."""
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500
