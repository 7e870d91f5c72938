"""An advisor run in a short-lived child process, so that its working set goes back to the system when it ends.

A run over thousands of statements builds a working set of 30-40 MiB (the catalog, whole texts, analyses, plans).
Freed in the long-running service, most of it stays resident: Python's allocator keeps an arena while one object
in it lives, and the run's long-lived results are spread over its arenas (``malloc_trim`` moved it by 2 MiB at
most: docs/benchmarks.md, 4b). A forked child runs it instead and exits, and all of it is returned.

Between runs the parent keeps the advisor's state (previous counters, outcome windows, analysis cache, ...) as
the child's pickle of the advisor, compressed: one ``bytes`` object (about 1 MiB at 10,000 statements), not
thousands of Python objects. The next child
unpickles it, runs, and sends back the run's result and the new pickle. Objects that are configuration or
resources shared with the parent (the state store, the password source, the thresholds) are pickled by
reference (``shared``): a forked child has them at the same address. The behaviour is the in-process run's: the
same object runs, with the same state; only where its memory lives differs.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from monitor.core.memory import die_with_parent

R = TypeVar("R")  # the runner (an Advisor or DatabaseAdvisors)
T = TypeVar("T")  # what a run returns
HEADER = struct.Struct("!?Q")  # the run succeeded; the length of its result's pickle (the state's follows)


class ChildFailed(RuntimeError):
    """The child ended without a result (killed, or its result could not be pickled)."""


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, shared: dict[int, object]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._shared = shared

    def persistent_id(self, obj: object) -> int | None:
        key = id(obj)
        return key if key in self._shared and self._shared[key] is obj else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, shared: dict[int, object]) -> None:
        super().__init__(io.BytesIO(data))
        self._shared = shared

    def persistent_load(self, pid: Any) -> object:
        return self._shared[pid]


class ChildRunner(Generic[R]):
    """Runs ``run(runner)`` in a forked child; the runner's state is carried from child to child (see module)."""

    def __init__(self, runner: R, shared: Iterable[object]) -> None:
        self.runner = runner  # as constructed: its state at start (loaded from the store) seeds the first child
        self._shared = {id(o): o for o in shared if o is not None and not isinstance(o, str | int | float | bool)}
        self._state: bytes | None = None  # the last child's pickle of the runner, compressed
        self._pid: int | None = None
        self._ended: int | None = None  # the pid of a child the watchdog ended

    def _dumps(self, obj: object) -> bytes:
        buffer = io.BytesIO()
        _Pickler(buffer, self._shared).dump(obj)
        return buffer.getvalue()

    def _loads(self, data: bytes) -> Any:
        return _Unpickler(data, self._shared).load()

    def run(self, run: Callable[[R], T], limit: float | None = None) -> T:
        """One run in a child (blocks the calling thread until the child ends); raises what the run raised.

        ``limit``: seconds after which the child is ended (``ChildFailed``). A forked child inherits every lock
        as it was at the fork, held or not: one held then by another of the service's threads (an I/O buffer's,
        say) is never released in the child, and a run that needs it would wait for ever, and the advisor with it."""
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():  # 3.12+ warns of forking a threaded process: the child runs no thread
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            self._child(run, write_end)
        os.close(write_end)
        self._pid = pid
        watchdog = threading.Timer(limit, self._end, (pid,)) if limit else None
        if watchdog is not None:
            watchdog.daemon = True
            watchdog.start()
        try:
            with open(read_end, "rb") as pipe:
                data = pipe.read()
        finally:
            if watchdog is not None:
                watchdog.cancel()
            _, status = os.waitpid(pid, 0)
            self._pid = None
        if len(data) < HEADER.size:
            if self._ended == pid:
                raise ChildFailed(f"the advisor's run process ran past its limit of {limit:g} s and was ended")
            raise ChildFailed(f"the advisor's run process ended without a result ({_how(status)})")
        ok, length = HEADER.unpack_from(data)
        result = self._loads(data[HEADER.size:HEADER.size + length])
        self._state = data[HEADER.size + length:] or self._state
        if not ok:
            raise result
        return result  # type: ignore[no-any-return]

    def _child(self, run: Callable[[R], T], out: int) -> None:
        """In the child: run, write the result and the runner's new state, and exit without any cleanup of the
        parent's (its sockets, its atexit handlers)."""
        code = 0
        try:
            signal.set_wakeup_fd(-1)  # the parent's event loop's: a signal here must not reach it
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # cancel(): ends the run at once
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
            die_with_parent()
            _let_go_of_sockets(keep=out)
            runner = self._loads(zlib.decompress(self._state)) if self._state is not None else self.runner
            result: object
            try:
                ok, result = True, run(runner)
            except BaseException as exc:
                ok, result = False, exc
            try:
                payload = self._dumps(result)
            except Exception as exc:  # an exception that does not pickle: its type and message
                ok, payload = False, self._dumps(RuntimeError(f"{type(result).__name__}: {result} ({exc})"))
            state = zlib.compress(self._dumps(runner), 1)
            with open(out, "wb") as pipe:
                pipe.write(HEADER.pack(ok, len(payload)))
                pipe.write(payload)
                pipe.write(state)
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    def _end(self, pid: int) -> None:
        """The watchdog: the child ran past its limit."""
        if self._pid == pid:
            self._ended = pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # it may be stuck where SIGTERM's default action is all it can take

    def cancel(self) -> None:
        """End the running child (safe from another thread); its run fails with ``ChildFailed``."""
        pid = self._pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _let_go_of_sockets(keep: int) -> None:
    """In the child: every socket inherited from the service (its HTTP listener and connections, its database and
    Redis connections) is pointed at /dev/null. A socket is closed for its peer only when its last copy is: a
    keep-alive connection the service closes during a run would otherwise stay open, and a scraper sending its next
    request on it would wait for the child to end. The numbers stay taken, so a stray finalizer in the child closes
    /dev/null, never a socket the run opened."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: the sockets stay shared until the child ends
        return
    null = os.open(os.devnull, os.O_RDWR)
    for fd in fds:
        if fd in (keep, null) or fd <= 2:  # standard streams stay: under systemd, stderr is journald's socket
            continue
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.dup2(null, fd)
    os.close(null)


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
