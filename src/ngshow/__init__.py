"""ngshow: look at big 3-D arrays in Neuroglancer, served from Python.

>>> import ngshow
>>> viewer = ngshow.show(volume, voxel_size=(6, 6, 40))
>>> viewer.add(ngshow.open("img.ome.zarr"))   # a file, with its levels, µm scales, colours, labels
>>> print(viewer)            # open this URL in a browser
>>> ngshow.stop()            # every URL stops working; every array is released
"""

from __future__ import annotations

import logging

from .errors import (
    ClientNotBuilt,
    DtypeConversionWarning,
    InvalidArray,
    InvalidRequest,
    InvalidState,
    LocalDataWarning,
    NgshowError,
    NotFound,
    ValuesClippedWarning,
    ViewerClosed,
)
from .layers import Layer
from .live import Skeleton
from .mesh import Mesh, MeshService, mesh, mesh_all
from .actions import ActionState
from .readers import Opened, open_file as open
from .runtime import (
    serve_forever,
    set_public_url,
    set_server_bind_address,
    set_static_content_source,
    use_jupyter_server_proxy,
)
from .screenshots import ScreenshotUnavailable
from .sources import ArraySource
from .sharing import load_state, parse_url, save_state, to_url
from .state import ViewerState
from .viewer import Viewer, screenshot, show, stop

__all__ = [
    "ActionState",
    "ArraySource",
    "ClientNotBuilt",
    "DtypeConversionWarning",
    "InvalidArray",
    "InvalidRequest",
    "InvalidState",
    "LocalDataWarning",
    "Layer",
    "Mesh",
    "MeshService",
    "NgshowError",
    "NotFound",
    "Opened",
    "ScreenshotUnavailable",
    "Skeleton",
    "Viewer",
    "ValuesClippedWarning",
    "ViewerClosed",
    "ViewerState",
    "load_state",
    "mesh",
    "mesh_all",
    "parse_url",
    "save_state",
    "open",
    "screenshot",
    "serve_forever",
    "set_public_url",
    "set_server_bind_address",
    "set_static_content_source",
    "show",
    "stop",
    "to_url",
    "use_jupyter_server_proxy",
]

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
