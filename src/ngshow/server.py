"""The local HTTP server: the bundled client, state sync and volume data (PROTOCOL.md).

One :class:`Server` per process runs aiohttp on its own event loop in a daemon thread, so it works beside
Jupyter's loop.  Slicing, downsampling and encoding run in a thread pool; user callbacks run one at a
time on a thread of their own.  This module is the only place where errors become HTTP status codes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession, web

from . import encodings
from .errors import InvalidRequest, NgshowError, NotFound, http_status
from .mesh import MeshService
from .static import StaticFiles, content_type, default_static_dir
from .tokens import find

if TYPE_CHECKING:
    from .convert.storage import Store
    from .served import ServedViewer, ServedVolume

__all__ = ["Server"]

logger = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}
HEARTBEAT_SECONDS = 15.0
#: How often an idle event stream checks that its browser tab is still there.
GONE_POLL_SECONDS = 0.25
#: Event streams (open tabs) one viewer accepts at once; more get 429, so a flood of /events
#: connections cannot tie up the server.
MAX_EVENT_STREAMS = 32
MAX_BODY_BYTES = 1 << 30  # screenshots can be tens of MB (PROTOCOL.md §2.7)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_TOKEN_ROUTES = {"v", "events", "state", "action", "credentials", "data"}


def redacted(path: str) -> str:
    """``path`` with its secrets (viewer, dataset and volume tokens) replaced, for logs."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] in _TOKEN_ROUTES:
        parts[2] = "<token>"
        if parts[1] == "data" and len(parts) > 3:
            parts[3] = "<dataset>"
    elif len(parts) > 3 and parts[1] == "neuroglancer":
        parts[3] = "<key>"
    return "/".join(parts)


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise InvalidRequest(f"{what} must be comma-separated integers, got {text!r}") from None


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidRequest(f"request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


class Server:
    """An aiohttp server on a background thread, serving every viewer of the process.

    It knows viewers and layers only through :mod:`ngshow.served` (what a viewer offers the HTTP
    layer), so it imports no viewer code.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        static_url: str | None = None,
        *,
        public_hostnames: Callable[[], set[str]] = set,
        in_colab: Callable[[], bool] = lambda: False,
    ) -> None:
        """``public_hostnames``: host names a proxy may send requests under (the Host check allows
        them); ``in_colab``: whether event streams must end after each message (Colab's proxy)."""
        self.host = host
        self._public_hostnames = public_hostnames
        self._in_colab = in_colab
        self._static_url = static_url.rstrip("/") if static_url else None
        self._static = None if static_url else StaticFiles(default_static_dir())
        self._viewers: dict[str, ServedViewer] = {}
        self._lock = threading.Lock()
        self._closing = False
        self.workers = min(32, (os.cpu_count() or 1) + 4)
        self.executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="ngshow-data")
        self.meshes = MeshService()
        self.callbacks = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ngshow-callbacks"
        )
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ngshow-server", daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = socket.getfqdn()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def _start(self) -> None:
        self._slots = asyncio.Semaphore(2 * self.workers)
        app = web.Application(middlewares=[self._errors, self._host_check], client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/favicon.ico", self._favicon)
        app.router.add_get("/v/{token}", self._redirect_slash)
        app.router.add_get("/v/{token}/{name:[^/]*}", self._static_file)
        app.router.add_get("/events/{token}", self._events)
        app.router.add_post("/state/{token}", self._post_state)
        app.router.add_post("/action/{token}", self._post_action)
        app.router.add_post("/credentials/{token}", self._credentials)
        app.router.add_get("/data/{token}/{dataset}/{path:.+}", self._dataset_file)
        app.router.add_get("/precomputed/{key}/{generation}/{path:.+}", self._live_file)
        app.router.add_get("/neuroglancer/info/{key}", self._info)
        app.router.add_get("/neuroglancer/mesh/{key}/{object_id}", self._mesh)
        app.router.add_get("/neuroglancer/{encoding}/{key}/{scale}/{start}/{end}", self._chunk)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.SockSite(self._runner, self._sock)
        await site.start()

    def stop(self) -> None:
        """Close every viewer (dropping their arrays), stop listening and end the thread."""
        with self._lock:
            viewers = list(self._viewers.values())
            self._viewers.clear()
        self._closing = True
        for viewer in viewers:
            viewer.detach()  # also wakes its event streams, which then end
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.callbacks.shutdown(wait=False, cancel_futures=True)

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._sock.close()

    # -- registry ----------------------------------------------------------------------------------

    def viewer_count(self) -> int:
        """How many viewers are open."""
        with self._lock:
            return len(self._viewers)

    def register(self, viewer: ServedViewer) -> None:
        with self._lock:
            self._viewers[viewer.token] = viewer

    def unregister(self, viewer: ServedViewer) -> None:
        with self._lock:
            self._viewers.pop(viewer.token, None)
        self.wake(viewer)

    def wake(self, viewer: ServedViewer) -> None:
        """Tell the viewer's open event streams that a document changed (from any thread)."""
        if self._loop.is_closed():
            return

        def _set() -> None:
            for event in list(viewer.watchers):
                event.set()

        try:
            self._loop.call_soon_threadsafe(_set)
        except RuntimeError:  # loop closed between the check and the call
            pass

    def viewer(self, token: str) -> ServedViewer:
        with self._lock:
            viewer = find(self._viewers, token)
        if viewer is None:
            raise NotFound("unknown viewer token")
        return viewer

    def layer(self, key: str) -> ServedVolume:
        token, _, volume = key.partition(".")
        return self.viewer(token).volume(volume)

    def run_callback(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a user callback on the callback thread; its exceptions are logged, never raised here."""

        def call() -> None:
            try:
                fn(*args)
            except Exception:
                logger.exception("ngshow callback %r raised", fn)

        try:
            self.callbacks.submit(call)
        except RuntimeError:  # shutting down
            pass

    async def _in_pool(self, fn: Callable[..., Any], *args: Any) -> Any:
        # Back-pressure: requests beyond the pool's capacity wait here as cheap coroutines, so
        # memory holds at most `_slots` chunks in flight however many requests arrive.
        async with self._slots:
            return await self._loop.run_in_executor(self.executor, fn, *args)

    # -- middleware --------------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except NgshowError as e:
            status = http_status(e)
            logger.debug("%s %s -> %d: %s", request.method, redacted(request.path), status, e)
            return web.Response(status=status, text=f"{e}\n" if status != 412 else "", headers=NO_STORE)
        except Exception:
            logger.exception("internal error serving %s %s", request.method, redacted(request.path))
            return web.Response(status=500, text="internal error (see the Python log)\n")

    @web.middleware
    async def _host_check(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # Bound to loopback: only loopback host names, so DNS rebinding cannot reach the data.
        if _is_loopback(self.host):
            hostname = (request.host or "").rsplit(":", 1)[0] if "]" not in (request.host or "") else (
                request.host.split("]")[0] + "]"
            )
            if not _is_loopback(hostname) and hostname.strip("[]") not in self._public_hostnames():
                return web.Response(status=403, text="host not allowed\n")
        return await handler(request)

    # -- static client -----------------------------------------------------------------------------

    async def _favicon(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async def _redirect_slash(self, request: web.Request) -> web.StreamResponse:
        self.viewer(request.match_info["token"])
        raise web.HTTPFound(request.path + "/")

    async def _static_file(self, request: web.Request) -> web.StreamResponse:
        viewer = self.viewer(request.match_info["token"])
        name = request.match_info["name"] or "index.html"
        if name == "index.html":
            viewer.page_loaded()
        if self._static_url is not None:
            return await self._proxy_static(name)
        assert self._static is not None
        body = self._static.get(name)
        return web.Response(body=body, content_type=content_type(name), headers={"Cache-Control": "no-cache"})

    async def _proxy_static(self, name: str) -> web.StreamResponse:
        async with ClientSession() as session:
            async with session.get(f"{self._static_url}/{name}") as upstream:
                if upstream.status != 200:
                    raise NotFound(f"static content server answered {upstream.status} for {name!r}")
                body = await upstream.read()
        return web.Response(body=body, content_type=content_type(name), headers={"Cache-Control": "no-cache"})

    # -- state sync --------------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        viewer = self.viewer(request.match_info["token"])
        client_id = request.query.get("c", "")
        if not client_id:
            raise InvalidRequest("missing client id (query parameter c)")
        # Only keys with a g<key> parameter are watched (a page opened with a #state URL omits gs).
        last = {k: request.query[f"g{k}"] for k in viewer.documents if f"g{k}" in request.query}
        if len(viewer.watchers) >= MAX_EVENT_STREAMS:
            return web.Response(
                status=429, text=f"too many open event streams for this viewer (at most {MAX_EVENT_STREAMS})\n",
                headers={**NO_STORE, "Retry-After": "5"},
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        event = asyncio.Event()
        viewer.watchers.add(event)  # counted before the first await, so the cap holds in a burst
        colab, start = self._in_colab(), dict(last)
        try:
            await response.prepare(request)
            while not self._closing and not viewer.closed:
                event.clear()
                for key, previous in last.items():
                    text, generation = viewer.documents[key].encoded()
                    if generation == previous or generation.startswith(client_id + "/"):
                        continue
                    message = '{"k":%s,"s":%s,"g":%s}' % (json.dumps(key), text, json.dumps(generation))
                    await response.write(f"data: {message}\n\n".encode())
                    last[key] = generation
                if colab and any(last[k] != start[k] for k in last):
                    break  # Colab's proxy holds a response until it ends; the client reconnects at once
                if not await self._woken_or_gone(event, request, response):
                    break  # the tab closed: stop counting it in connected_clients() at once
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            viewer.watchers.discard(event)
        return response

    async def _woken_or_gone(self, event: asyncio.Event, request: web.Request, response: web.StreamResponse) -> bool:
        """Wait for ``event`` (True), with a heartbeat every ``HEARTBEAT_SECONDS``; False once the
        client has disconnected (noticed within ``GONE_POLL_SECONDS``)."""
        idle = 0.0
        while True:
            try:
                await asyncio.wait_for(event.wait(), GONE_POLL_SECONDS)
                return True
            except asyncio.TimeoutError:
                pass
            transport = request.transport
            if transport is None or transport.is_closing():
                return False
            idle += GONE_POLL_SECONDS
            if idle >= HEARTBEAT_SECONDS:
                idle = 0.0
                await response.write(b": heartbeat\n\n")

    async def _post_state(self, request: web.Request) -> web.StreamResponse:
        viewer = self.viewer(request.match_info["token"])
        body = await _json_body(request)
        state, count, previous, client_id = (body.get(k) for k in ("s", "g", "pg", "c"))
        if not isinstance(state, dict) or not isinstance(client_id, str) or not isinstance(previous, str):
            raise InvalidRequest("state update must have s (object), g, pg (string) and c (string)")
        if not isinstance(count, (int, str)):
            raise InvalidRequest("state update count g must be an integer")
        generation = viewer.documents["s"].set_from_client(state, previous, client_id, count)
        viewer.state_changed_by_client()
        return web.json_response({"g": generation})

    async def _post_action(self, request: web.Request) -> web.StreamResponse:
        viewer = self.viewer(request.match_info["token"])
        body = await _json_body(request)
        action = body.get("action")
        if not isinstance(action, str):
            raise InvalidRequest("action body needs a string 'action'")
        viewer.dispatch_action(action, body.get("state") or {})
        return web.Response(status=200)

    async def _credentials(self, request: web.Request) -> web.StreamResponse:
        self.viewer(request.match_info["token"])
        return web.Response(status=403, text="ngshow does not broker credentials\n")

    # -- volume data -------------------------------------------------------------------------------

    async def _dataset_file(self, request: web.Request) -> web.StreamResponse:
        viewer = self.viewer(request.match_info["token"])
        remote = viewer.remote_dataset(request.match_info["dataset"])
        if remote is not None:
            return await self._object(request, remote, request.match_info["path"])
        path = viewer.dataset_file(request.match_info["dataset"], request.match_info["path"])
        # FileResponse answers Range requests, and 416 for a range outside the file.
        return web.FileResponse(path, headers={"Cache-Control": "no-cache", "Content-Type": "application/octet-stream"})

    async def _object(self, request: web.Request, store: Store, key: str) -> web.StreamResponse:
        """An object of an ``s3://``/``gs://`` dataset, read with this machine's credentials."""
        if any(part in ("", ".", "..") for part in key.split("/")):
            raise NotFound(f"no such file: {key!r}")
        headers = {"Cache-Control": "no-cache", "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        try:
            if "Range" not in request.headers:
                body = await self._in_pool(store.get, key)
                if body is None:
                    raise FileNotFoundError(key)
                return web.Response(body=body, headers=headers)
            try:
                wanted = request.http_range
            except ValueError:
                raise InvalidRequest(f"malformed Range header {request.headers['Range']!r}") from None
            size = await self._in_pool(store.size, key)
            start, stop = wanted.start, wanted.stop
            if start is None:
                start = 0
            elif start < 0:  # a suffix: the last -start bytes
                start = max(0, size + start)
            stop = size if stop is None else min(stop, size)
            if start >= size or start >= stop:
                return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
            body = await self._in_pool(store.get_range, key, start, stop)
            if body is None:
                raise FileNotFoundError(key)
        except FileNotFoundError:
            raise NotFound(f"no such file: {key!r}") from None
        return web.Response(
            status=206, body=body, headers={**headers, "Content-Range": f"bytes {start}-{stop - 1}/{size}"}
        )

    async def _live_file(self, request: web.Request) -> web.StreamResponse:
        # Any generation is answered with the layer's current data; the generation in the URL only
        # makes the client, which keys precomputed sources by URL, forget what it had.
        layer = self.layer(request.match_info["key"])
        body, content_type = await self._in_pool(layer.live_file, request.match_info["path"])
        return web.Response(body=body, content_type=content_type, headers=NO_STORE)

    async def _info(self, request: web.Request) -> web.StreamResponse:
        layer = self.layer(request.match_info["key"])
        return web.json_response(layer.info(), headers=NO_STORE)

    async def _chunk(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        layer = self.layer(m["key"])
        if m["encoding"] not in encodings.ENCODINGS:
            raise InvalidRequest(f"unknown encoding {m['encoding']!r}")
        factors = _ints(m["scale"], "scale key")
        start = _ints(m["start"], "chunk start")
        end = _ints(m["end"], "chunk end")
        body = await self._in_pool(layer.encoded_chunk, m["encoding"], factors, start, end)
        return web.Response(body=body, content_type="application/octet-stream", headers=NO_STORE)

    async def _mesh(self, request: web.Request) -> web.StreamResponse:
        layer = self.layer(request.match_info["key"])
        try:
            object_id = int(request.match_info["object_id"])
        except ValueError:
            raise InvalidRequest("object id must be a decimal integer") from None
        body = await self._in_pool(self.meshes.fragment, layer.source, layer.generation, object_id)
        return web.Response(body=body, content_type="application/octet-stream", headers=NO_STORE)
