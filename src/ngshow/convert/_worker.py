"""A :class:`~ngshow.convert.executors.CleanProcessPool` worker: ``python -m ngshow.convert._worker``.

Reads frames of cloudpickled ``(fn, args, kwargs)`` and answers each with the pickled result (or
exception); the task's own prints go to stderr.  Exits at the end of its input, i.e. when the pool
shuts down or the driver dies.  Plain, it talks over stdin/stdout; with ``--template`` it forks one
such worker per socket the driver passes it (over the UNIX socket on its stdin).
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import struct
import sys
import traceback
from typing import IO, Any, cast

from ngshow.convert.executors import _dumps, read_frame, write_frame


def _failure(exc: BaseException) -> bytes:
    """``(exception, traceback text)``, or a RuntimeError with its text if it does not pickle."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        return _dumps((exc, text))
    except Exception:
        return _dumps((RuntimeError(f"{type(exc).__name__}: {exc}"), text))


def serve(inbox: IO[bytes], outbox: IO[bytes]) -> None:
    """Answer task frames until the end of ``inbox``; the first frame is the driver's sys.path,
    environment and working directory."""
    first = read_frame(inbox)
    if first is None:
        return
    context = pickle.loads(first[0])
    sys.path[:] = context["path"]
    os.environ.clear()
    os.environ.update(context["env"])
    os.chdir(context["cwd"])
    while True:
        frame = read_frame(inbox)
        if frame is None:
            return
        try:
            fn, args, kwargs = pickle.loads(frame[0])
            result: Any = fn(*args, **kwargs)
            reply, ok = _dumps(result), True
        except BaseException as e:  # every failure goes back to the driver
            reply, ok = _failure(e), False
        write_frame(outbox, reply, ok)


def template() -> None:
    """Fork a worker for each socket the driver sends on stdin (a UNIX socket); exit at its end."""
    control = socket.socket(fileno=os.dup(sys.stdin.fileno()))
    # Only `control` holds the socket, so the driver sees it close if this process dies, even while
    # workers it forked (which close `control`) live on.
    os.dup2(os.open(os.devnull, os.O_RDONLY), sys.stdin.fileno())
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished workers
    while True:
        message, fds, _flags, _address = socket.recv_fds(control, 16, 1)
        if not message or not fds:
            return
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                with socket.socket(fileno=fds[0]) as sock:
                    serve(cast(IO[bytes], sock.makefile("rb", buffering=0)), cast(IO[bytes], sock.makefile("wb", buffering=0)))
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(fds[0])
        control.sendall(struct.pack("<q", pid))


def main() -> None:
    # Ctrl-C in the terminal reaches the whole process group; the driver decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import ngshow.convert.tasks  # noqa: F401  (warm: NumPy, the codecs, the mesher)

    if sys.argv[1:] == ["--template"]:
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not reach the socket
        template()
        return
    inbox = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    outbox = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the frames
    serve(inbox, outbox)


if __name__ == "__main__":
    main()
