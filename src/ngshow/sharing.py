"""Shareable views: Neuroglancer URLs (``#!<state JSON>``) and state files, both ways.

A URL made here opens in any Neuroglancer deployment; one made by Neuroglancer (or PyPI
``neuroglancer.to_url``) parses back to a :class:`~ngshow.state.ViewerState`.  Layers whose data only
this process serves (``python://`` volumes, local datasets served by ngshow) cannot be reached from
another machine: :func:`local_layers` names them so callers can warn.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InvalidState
from .state import LAYER_TYPES, ViewerState, source_urls

__all__ = [
    "DEFAULT_BASE",
    "check_state",
    "is_remote_source",
    "is_url_source",
    "load_state",
    "local_layers",
    "merge_saved_state",
    "parse_url",
    "save_state",
    "to_url",
]

logger = logging.getLogger(__name__)

#: The public Neuroglancer deployment Google runs.
DEFAULT_BASE = "https://neuroglancer-demo.appspot.com/"

# Characters left unquoted in the fragment: what Neuroglancer itself leaves readable.
_SAFE = "~@#$&()*!+=:;,.?/'"

# Data-source schemes the client resolves on its own (so a layer with one works from any machine).
_REMOTE = re.compile(
    r"^(?:(?:precomputed|zarr|zarr2|zarr3|n5|nifti|deepzoom|graphene|boss|dvid|render|obj|vtk|ngauth|"
    r"brainmaps)://)*(?:gs|gs\+ngauth\+https?|s3|https?)://"
)


def _as_json(state: ViewerState | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(state, ViewerState):
        return state.json
    if isinstance(state, Mapping):
        return dict(state)
    raise InvalidState(f"expected a ViewerState or a dict, got {type(state).__name__}")


def check_state(value: Any, *, where: str = "state") -> ViewerState:
    """``value`` as a :class:`ViewerState` after checking its shape; :class:`InvalidState` names the problem."""
    if not isinstance(value, dict):
        raise InvalidState(f"{where}: a viewer state is a JSON object, got {type(value).__name__}")
    layers = value.get("layers", [])
    if isinstance(layers, dict):  # the old spelling: {name: layer}
        layers = [{**layer, "name": name} for name, layer in layers.items()]
        value = {**value, "layers": layers}
    if not isinstance(layers, list):
        raise InvalidState(f"{where}: 'layers' must be a list of layer objects")
    names = set()
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise InvalidState(f"{where}: layer {i} is not a JSON object")
        name = layer.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidState(f"{where}: layer {i} has no name")
        if name in names:
            raise InvalidState(f"{where}: two layers are named {name!r}")
        names.add(name)
        kind = layer.get("type")
        if kind is not None and kind not in LAYER_TYPES:
            raise InvalidState(f"{where}: layer {name!r} has unknown type {kind!r}; known: {list(LAYER_TYPES)}")
        if kind is None and not source_urls(layer.get("source")):
            raise InvalidState(f"{where}: layer {name!r} has neither a type nor a source")
    return ViewerState(value)


def to_url(state: ViewerState | Mapping[str, Any], base: str = DEFAULT_BASE) -> str:
    """A link that opens ``state`` in the Neuroglancer at ``base``.

    >>> ngshow.to_url(viewer.state, base="https://neuroglancer-demo.appspot.com/")
    """
    if not re.match(r"^https?://", base):
        raise InvalidState(f"base must be an http(s) URL of a Neuroglancer deployment, got {base!r}")
    text = json.dumps(_as_json(state), separators=(",", ":"), allow_nan=False)
    return f"{base.split('#', 1)[0]}#!{urllib.parse.quote(text, safe=_SAFE)}"


def parse_url(url: str) -> ViewerState:
    """The viewer state in a Neuroglancer URL's ``#!{...}`` fragment.

    Raises :class:`InvalidState` for a URL without a state fragment, for invalid JSON, and for layers of
    unknown type.
    """
    if not isinstance(url, str):
        raise InvalidState(f"expected a URL string, got {type(url).__name__}")
    fragment = url.split("#", 1)[1] if "#" in url else ""
    text = urllib.parse.unquote(fragment)
    if text.startswith("!"):
        text = text[1:]
    if not text.strip():
        raise InvalidState(f"the URL has no state fragment (#!{{...}}): {url[:120]!r}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidState(f"the URL's state is not valid JSON: {e}") from None
    return check_state(value, where="URL state")


def save_state(state: ViewerState | Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` as a JSON file (atomically: a half-written file never replaces a good one)."""
    target = Path(path)
    text = json.dumps(_as_json(state), indent=2, allow_nan=False) + "\n"
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, target)


def load_state(path: str | os.PathLike[str]) -> ViewerState:
    """A state from a JSON file (as :func:`save_state` writes, or Neuroglancer's "Edit JSON state"), or a
    file or string holding a Neuroglancer URL."""
    text = str(path)
    if re.match(r"^https?://", text):
        return parse_url(text)
    try:
        content = Path(path).read_text()
    except OSError as e:
        raise InvalidState(f"cannot read state file {text!r}: {e.strerror or e}") from None
    stripped = content.strip()
    if re.match(r"^https?://\S*#", stripped):
        return parse_url(stripped)
    try:
        value = json.loads(content)
    except json.JSONDecodeError as e:
        raise InvalidState(f"{text}: not valid JSON ({e})") from None
    return check_state(value, where=text)


def is_url_source(url: str) -> bool:
    """True if the client fetches ``url`` by itself: ``gs://``, ``s3://`` or ``http(s)://`` under any
    data-source scheme (``zarr://https://…``), as opposed to a path on this machine."""
    return _REMOTE.match(url) is not None


def is_remote_source(url: str) -> bool:
    """True if a client on any machine can fetch ``url`` (:func:`is_url_source`, not on a loopback host)."""
    if not is_url_source(url):
        return False
    host = urllib.parse.urlparse(re.sub(r"^(?:[a-z0-9+]+://)*(?=(?:https?)://)", "", url)).hostname or ""
    return host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def local_layers(state: ViewerState | Mapping[str, Any], *, served_by: str | None = None) -> list[str]:
    """Names of layers a client elsewhere cannot load: ``python://`` sources, and URLs under
    ``served_by`` (this process's server) or on a loopback host.  Annotations kept in the state travel
    with it."""
    names = []
    for entry in _as_json(state).get("layers", []):
        for url in source_urls(entry.get("source")):
            local = url.startswith("python://") or (served_by is not None and served_by in url)
            if local or (not url.startswith("local://") and not is_remote_source(url)):
                names.append(str(entry.get("name")))
                break
    return names


def merge_saved_state(current: Mapping[str, Any], saved: ViewerState | Mapping[str, Any]) -> dict[str, Any]:
    """``saved``'s view and layer settings over ``current``.

    A saved layer whose data was served by some ngshow process takes the data source of the current
    layer of the same name (so a view saved yesterday reopens on today's arrays); without one it is
    dropped, with a warning in the log.  Saved layers with remote or embedded data are kept as they are;
    current layers the saved state does not mention are kept after them.
    """
    saved_json = copy.deepcopy(_as_json(saved))
    current_layers = {e.get("name"): e for e in current.get("layers", [])}
    layers = []
    for entry in saved_json.get("layers", []):
        name = entry.get("name")
        urls = source_urls(entry.get("source"))
        remote = all(u.startswith("local://") or is_remote_source(u) for u in urls)
        if remote and urls:
            layers.append(entry)
        elif name in current_layers:
            mine = current_layers[name]
            layers.append({**entry, "source": copy.deepcopy(mine.get("source")), "type": mine.get("type")})
        else:
            logger.warning("saved layer %r used data served by another process; it is left out", name)
    taken = {e.get("name") for e in layers}
    layers += [copy.deepcopy(e) for name, e in current_layers.items() if name not in taken]
    result = {**copy.deepcopy(dict(current)), **saved_json, "layers": layers}
    return result
