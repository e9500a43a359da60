"""The process-wide server: started on first use, stopped by :func:`stop`, and its settings.

Kept apart from :mod:`ngshow.server` so ``import ngshow`` does not pay for importing aiohttp.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .server import Server

__all__ = [
    "get_server",
    "serve_forever",
    "stop",
    "set_server_bind_address",
    "set_static_content_source",
    "set_public_url",
    "public_base_url",
    "public_hostnames",
    "in_colab",
    "use_jupyter_server_proxy",
]

logger = logging.getLogger(__name__)

_server: Server | None = None
_lock = threading.Lock()
_bind: tuple[str, int] = ("127.0.0.1", 0)
_static_url: str | None = None
_public_url: str | None = None
_proxy_base: str | None = None  # set by use_jupyter_server_proxy
_colab_urls: dict[int, str] = {}  # port -> the URL Colab's kernel proxy gave for it


def get_server() -> Server:
    """The process's server, started on first use."""
    global _server
    with _lock:
        if _server is None:
            from .server import Server

            _server = Server(*_bind, static_url=_static_url, public_hostnames=public_hostnames, in_colab=in_colab)
            logger.info("ngshow server listening on %s", _server.base_url)
            _register_exit_hint()
        return _server


def stop() -> None:
    """Shut the server down: close every viewer, drop every array, invalidate every URL."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.stop()


def serve_forever() -> None:
    """Keep serving every viewer until :func:`stop` is called (from a callback, another thread) or
    Ctrl-C, which stops the server cleanly.  End a script with it to keep its viewers open."""
    try:
        while _server is not None:
            time.sleep(0.1)
    except KeyboardInterrupt:
        stop()


_hint_registered = False


def _register_exit_hint() -> None:
    global _hint_registered
    if not _hint_registered:
        _hint_registered = True
        atexit.register(_exit_hint)


def _exit_hint() -> None:
    """At interpreter exit, say why open viewers stop working (a plain script just ended)."""
    server = _server
    if server is None or sys.flags.interactive or hasattr(sys, "ps1") or "ipykernel" in sys.modules:
        return
    count = server.viewer_count()
    if count:
        viewers = "its viewer stops" if count == 1 else f"its {count} viewers stop"
        sys.stderr.write(
            f"ngshow: the script ended, so {viewers} too; end it with viewer.wait() or "
            "ngshow.serve_forever() to keep serving until Ctrl-C\n"
        )


def set_server_bind_address(host: str = "127.0.0.1", port: int = 0) -> None:
    """Where the next server listens (a running one is stopped first).

    Binding anything but loopback exposes your arrays to anyone who learns a viewer URL.
    """
    global _bind
    stop()
    _bind = (host, int(port))


def set_static_content_source(*, url: str | None = None) -> None:
    """Serve the client from ``url`` (e.g. a Neuroglancer dev server) instead of the bundle.

    ``url=None`` goes back to the bundled client.  Takes effect for the next server.
    """
    global _static_url
    stop()
    _static_url = url


def set_public_url(url: str | None) -> None:
    """Give viewer URLs this base (e.g. ``http://localhost:9000`` behind an SSH tunnel, or a
    JupyterHub proxy path) instead of the address the server binds.  ``$NGSHOW_PUBLIC_URL`` does the
    same.  ``None`` goes back to the bind address."""
    global _public_url
    _public_url = url.rstrip("/") if url else None


def use_jupyter_server_proxy(base_url: str | None = "/") -> None:
    """Give viewer URLs the form ``<base_url>proxy/<port>/v/<token>/`` so the browser reaches the
    server through `jupyter-server-proxy <https://jupyter-server-proxy.readthedocs.io>`_, whatever port
    it got.  ``base_url`` is the Jupyter server's base URL (a path such as ``/user/alice/`` or a full
    URL); ``None`` goes back to the default: on in JupyterHub kernels (``$JUPYTERHUB_SERVICE_PREFIX``
    set), off elsewhere.  Local datasets (:meth:`Viewer.add_precomputed`) need a full URL here."""
    global _proxy_base
    _proxy_base = base_url if base_url is None else (base_url.rstrip("/") + "/")


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def _colab_url(port: int) -> str:
    # The documented call: google.colab.kernel.proxyPort(port) gives an https URL for a kernel port.
    if port not in _colab_urls:
        from google.colab import output

        url = output.eval_js(f"google.colab.kernel.proxyPort({int(port)})")
        _colab_urls[port] = str(url).rstrip("/")
    return _colab_urls[port]


def _proxy() -> str | None:
    if _proxy_base is not None:
        return _proxy_base
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix and "ipykernel" in sys.modules:
        return prefix.rstrip("/") + "/"
    return None


def public_base_url(port: int | None = None) -> str | None:
    """The base of viewer URLs if it is not the bind address: :func:`set_public_url` or
    ``$NGSHOW_PUBLIC_URL``; else, given the server's ``port``, Colab's kernel proxy or
    jupyter-server-proxy (:func:`use_jupyter_server_proxy`)."""
    env = os.environ.get("NGSHOW_PUBLIC_URL")
    explicit = _public_url or (env.rstrip("/") if env else None)
    if explicit or port is None:
        return explicit
    if in_colab():
        return _colab_url(port)
    proxy = _proxy()
    return f"{proxy}proxy/{int(port)}" if proxy is not None else None


def public_hostnames() -> set[str]:
    """Host names a proxy may send requests under (for the server's Host check); never asks Colab."""
    urls = [u for u in (_public_url, os.environ.get("NGSHOW_PUBLIC_URL"), _proxy()) if u]
    names = {urlsplit(u).hostname for u in [*urls, *_colab_urls.values()]}
    return {n for n in names if n}
