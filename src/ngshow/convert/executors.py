"""A process pool whose workers start from a clean interpreter and never import ``__main__``.

:class:`multiprocessing` starts workers by re-importing the parent's ``__main__`` (spawn and
forkserver alike), which re-runs a plain script without a ``if __name__ == "__main__":`` guard,
fails for ``python -c`` and stdin, and re-executes any top-level side effect (a viewer, a plot).
:class:`CleanProcessPool` instead starts ``python -m ngshow.convert._worker`` subprocesses that
import only ngshow's task code, and sends them work pickled with *cloudpickle*, which carries
functions and classes defined in ``__main__`` by value.  On Linux the workers are forked from one
such clean interpreter (a *template*, started once per driver process), so a pool starts in
milliseconds; elsewhere each worker is a fresh interpreter.  Workers talk over a pipe or socket to
the driver, so they exit by themselves when the driver dies (even by SIGKILL).
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from typing import IO, Any, TypeVar, cast

__all__ = ["CleanProcessPool", "RemoteTraceback", "WorkerDied"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A frame is this header (payload length, 1 = success / 0 = exception) then the payload.
HEADER = struct.Struct("<QB")


class RemoteTraceback(Exception):
    """A worker's traceback, set as the ``__cause__`` of the exception its task raised."""


class WorkerDied(BrokenProcessPool):
    """A worker process exited (killed, out of memory, crashed) while it ran a task."""


def write_frame(stream: IO[bytes], payload: bytes, ok: bool = True) -> None:
    for part in (HEADER.pack(len(payload), int(ok)), payload):
        view = memoryview(part)
        while view:  # raw pipes and sockets may take less than all of it
            written = stream.write(view)
            view = view[written if written is not None else len(view) :]
    stream.flush()


def read_frame(stream: IO[bytes]) -> tuple[bytes, bool] | None:
    """The next frame's ``(payload, ok)``, or None at end of stream."""
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    size, ok = HEADER.unpack(header)
    payload = _read_exactly(stream, size)
    if payload is None:
        return None
    return payload, bool(ok)


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _dumps(obj: Any) -> bytes:
    import cloudpickle

    return bytes(cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


class _Item:
    __slots__ = ("future", "fn", "args", "kwargs")

    def __init__(self, future: Future[Any], fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        self.future, self.fn, self.args, self.kwargs = future, fn, args, kwargs


def _worker_command(*extra: str) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return [sys.executable, "-m", "ngshow.convert._worker", *extra], env


class _Forked:
    """A worker forked by the template: not our child, so watched by pid (the template reaps it)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return -1
        except PermissionError:  # pragma: no cover - a reused pid of someone else's
            return -1
        return None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("convert worker", timeout or 0.0)
            time.sleep(0.01)
        return -1

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class _Template:
    """A clean interpreter that has imported the task code once and forks workers on request.

    Forking it costs milliseconds where a fresh interpreter costs a few tenths of a second.  It is
    safe where forking the driver is not: it runs no threads of ours and never saw the user's code.
    It exits when the driver does (its control socket closes).
    """

    def __init__(self) -> None:
        command, env = _worker_command("--template")
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(command, stdin=theirs.fileno(), env=env, close_fds=True)
        theirs.close()
        ours.settimeout(120)  # a template that stopped answering is replaced (OSError below)
        self.control = ours
        self.lock = threading.Lock()

    def close(self) -> None:
        """Let go of a template that died (or stopped answering)."""
        self.control.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def fork(self) -> tuple[_Forked, socket.socket]:
        """A new worker and our end of its socket."""
        ours, theirs = socket.socketpair()
        try:
            with self.lock:
                socket.send_fds(self.control, [b"f"], [theirs.fileno()])
                answer = _read_exactly(cast(IO[bytes], self.control.makefile("rb", buffering=0)), 8)
        finally:
            theirs.close()
        if answer is None:
            ours.close()
            raise OSError("the convert worker template exited")
        return _Forked(struct.unpack("<q", answer)[0]), ours


_template: _Template | None = None
_template_lock = threading.Lock()


def _fork_worker() -> tuple[_Forked, socket.socket] | None:
    """A worker forked from this process's template (started on first use), or None where
    forking is not available (then workers are fresh interpreters)."""
    global _template
    if not sys.platform.startswith("linux") or not hasattr(socket, "send_fds"):
        return None
    with _template_lock:
        for _attempt in range(2):
            if _template is not None and _template.process.poll() is not None:
                _template.close()
                _template = None
            if _template is None:
                _template = _Template()
            try:
                return _template.fork()
            except OSError:  # killed or stuck: start another
                _template.close()
                _template = None
    return None


class _Worker:
    """One worker process and the thread that feeds it one task at a time."""

    def __init__(self, pool: CleanProcessPool, index: int) -> None:
        self.pool = pool
        forked = _fork_worker()
        self.process: subprocess.Popen[bytes] | _Forked
        if forked is not None:
            self.process, sock = forked
            self._socket: socket.socket | None = sock
            self.to_worker: IO[bytes] = cast(IO[bytes], sock.makefile("wb", buffering=0))
            self.from_worker: IO[bytes] = cast(IO[bytes], sock.makefile("rb", buffering=0))
        else:
            command, env = _worker_command()
            popen = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0)
            assert popen.stdin is not None and popen.stdout is not None
            self.process, self._socket = popen, None
            self.to_worker, self.from_worker = popen.stdin, popen.stdout
        self.thread = threading.Thread(target=self._serve, name=f"ngshow-convert-worker-{index}", daemon=True)

    def start(self) -> None:
        # The driver's import path, environment (credentials, endpoints set since the template
        # started) and working directory first, so tasks run as they would in the driver.
        context = {"path": list(sys.path), "env": dict(os.environ), "cwd": os.getcwd()}
        write_frame(self.to_worker, pickle.dumps(context))
        self.thread.start()

    def _died(self) -> WorkerDied:
        code = self.process.wait()
        how = f"with code {code}" if isinstance(self.process, subprocess.Popen) else "(killed or crashed)"
        return WorkerDied(f"a convert worker process (pid {self.process.pid}) exited {how} while running a task")

    def _serve(self) -> None:
        try:
            while True:
                item = self.pool._queue.get()
                if item is None:
                    return
                if not item.future.set_running_or_notify_cancel():
                    continue
                try:
                    payload = _dumps((item.fn, item.args, item.kwargs))
                except BaseException as e:
                    item.future.set_exception(e)
                    continue
                try:
                    write_frame(self.to_worker, payload)
                    reply = read_frame(self.from_worker)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    reply = None
                if reply is None:
                    error = self._died()
                    item.future.set_exception(error)
                    self.pool._break(error)
                    return
                data, ok = reply
                try:
                    value = pickle.loads(data)
                except BaseException as e:
                    item.future.set_exception(e)
                    continue
                if ok:
                    item.future.set_result(value)
                else:
                    error, text = value
                    error.__cause__ = RemoteTraceback(f'\n"""\n{text}"""')
                    item.future.set_exception(error)
        finally:
            self._close_pipes()

    def _close_pipes(self) -> None:
        for stream in (self.to_worker, self.from_worker, self._socket):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def stop(self, timeout: float) -> None:
        """Wait for the worker to exit after its stdin closed; kill it if it does not."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class CleanProcessPool(Executor):
    """A :class:`concurrent.futures.Executor` of ``max_workers`` clean worker processes.

    Parameters
    ----------
    max_workers
        Worker processes (default: all cores).

    Unlike :class:`concurrent.futures.ProcessPoolExecutor` it works from plain scripts without a
    main guard, ``python -c``, stdin, ``python -i`` and notebooks: workers never import the
    caller's ``__main__``, and what it defines travels by value.  If a worker dies, its task fails
    with :class:`WorkerDied` and so does every task not yet started (the pool is then broken).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._max_workers = max_workers or os.cpu_count() or 1
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shutdown = False
        self._broken: BaseException | None = None
        self._workers = [_Worker(self, i) for i in range(self._max_workers)]  # start in parallel
        for worker in self._workers:
            worker.start()

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if self._broken is not None:
                raise BrokenProcessPool(f"the pool is broken: {self._broken}")
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: Future[T] = Future()
            self._queue.put(_Item(future, fn, args, kwargs))
            return future

    def _drain(self, error: BaseException | None) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                continue
            if error is None:
                item.future.cancel()
            elif item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)

    def _break(self, error: BaseException) -> None:
        with self._lock:
            if self._broken is None:
                self._broken = error
        self._drain(error)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            already, self._shutdown = self._shutdown, True
        if cancel_futures:
            self._drain(None)
        if already:
            return
        for _ in self._workers:
            self._queue.put(None)
        if wait:
            for worker in self._workers:
                worker.thread.join()
                worker.stop(timeout=30)
        else:
            threading.Thread(target=self._reap, name="ngshow-convert-reaper", daemon=True).start()

    def _reap(self) -> None:
        for worker in self._workers:
            worker.thread.join()
            worker.stop(timeout=30)
