"""Errors of the conversion pipeline (rooted at :class:`ngshow.errors.NgshowError`)."""

from __future__ import annotations

from ..errors import NgshowError

__all__ = ["ConvertError", "MissingChunk"]


class ConvertError(NgshowError, RuntimeError):
    """A conversion cannot start or did not finish (a task failed, the destination conflicts)."""


class MissingChunk(NgshowError, FileNotFoundError):
    """A chunk a task needs to read is not in the store (an earlier stage did not finish)."""
