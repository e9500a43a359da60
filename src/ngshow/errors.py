"""Exceptions raised by ngshow.

Every error derives from :class:`NgshowError` and also from the matching built-in type, so callers can
catch either.  :func:`http_status` is the one place that maps them to HTTP status codes.
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = [
    "NgshowError",
    "InvalidArray",
    "InvalidRequest",
    "InvalidState",
    "NotFound",
    "ClientNotBuilt",
    "ViewerClosed",
    "Conflict",
    "DtypeConversionWarning",
    "LocalDataWarning",
    "AxesGuessWarning",
    "ValuesClippedWarning",
    "http_status",
    "warn_user",
]


class NgshowError(Exception):
    """Base class of every ngshow error."""


class InvalidArray(NgshowError, TypeError):
    """An array (or array-like) that ngshow cannot show: wrong rank, dtype or shape."""


class InvalidRequest(NgshowError, ValueError):
    """A malformed request: bad chunk box, factors, encoding or JSON body."""


class InvalidState(NgshowError, ValueError):
    """A viewer state, view URL, state file or keyframe list that cannot be used as given."""


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


class LocalDataWarning(UserWarning):
    """A shared link names layers whose data only this process serves: other machines cannot load them."""


class DtypeConversionWarning(UserWarning):
    """An array's dtype is not one Neuroglancer reads, so ngshow converts it per chunk."""


class AxesGuessWarning(UserWarning):
    """ngshow guessed what an array's axes are (pass ``axes=`` to say)."""


class ValuesClippedWarning(DtypeConversionWarning):
    """Values of an array did not fit the dtype it is served or written as (clipped or wrapped)."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` pointing at the first caller outside ngshow (the user's line).

    Called from a thread of ngshow's own (serving chunks), there is no user frame; if the warning
    filters turn the warning into an error there, it is logged instead, so serving goes on.
    """
    level, frame = 2, sys._getframe(1)
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    try:
        warnings.warn(message, category, stacklevel=level)
    except Warning:
        import logging

        logging.getLogger("ngshow").warning("%s: %s", category.__name__, message)


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
