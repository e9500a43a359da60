"""A :class:`~ngshow.convert.executors.CleanProcessPool` worker: ``python -m ngshow.convert._worker``.

Reads frames of cloudpickled ``(fn, args, kwargs)`` from stdin and answers each with the pickled
result (or exception) on what was stdout; the task's own prints go to stderr.  Exits at the end of
its input, i.e. when the pool shuts down or the driver dies.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import traceback
from typing import Any

from ngshow.convert.executors import _dumps, read_frame, write_frame


def _failure(exc: BaseException) -> bytes:
    """``(exception, traceback text)``, or a RuntimeError with its text if it does not pickle."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        return _dumps((exc, text))
    except Exception:
        return _dumps((RuntimeError(f"{type(exc).__name__}: {exc}"), text))


def main() -> None:
    # Ctrl-C in the terminal reaches the whole process group; the driver decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    outbox = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the frames
    first = read_frame(inbox)
    if first is None:
        return
    sys.path[:] = pickle.loads(first[0])
    import ngshow.convert.tasks  # noqa: F401  (warm: NumPy, the codecs, the mesher)

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


if __name__ == "__main__":
    main()
