"""Secrets in URLs: random 160-bit tokens, looked up in constant time."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["new_token", "find"]

T = TypeVar("T")


def new_token() -> str:
    """160 random bits as 40 lowercase hex characters."""
    return secrets.token_hex(20)


def find(candidates: Mapping[str, T], token: str) -> T | None:
    """The value whose key equals ``token``, comparing every key in constant time."""
    found = None
    wanted = token.encode()
    for candidate, value in candidates.items():
        if hmac.compare_digest(candidate.encode(), wanted):
            found = value
    return found
