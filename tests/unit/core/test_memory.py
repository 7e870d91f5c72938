"""Giving freed heap pages back to the system (monitor/core/memory.py), on this process's real glibc heap."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest

from monitor.core import memory

glibc = pytest.mark.skipif(memory._libc() is None, reason="not glibc: nothing to trim")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@glibc
@pytest.mark.parametrize("release", [memory.release_freed_memory, memory.trim_heap],
                         ids=["after an advisor run (collect, then trim)", "after a poll (trim only)"])
def test_freed_heap_pages_go_back_to_the_system(release: Callable[[], bool]) -> None:
    # 1 KiB blocks come from malloc's heap, not from mmap (which is returned at once), and the last one, kept,
    # pins the heap's top: without a trim, glibc keeps the freed blocks' pages. A poll's rows are freed by
    # reference counting when it ends: the scheduler's trim needs no gc.collect().
    blocks = [bytes(1024) + bytes([i % 256]) for i in range(80_000)]
    keep = blocks[-1]
    del blocks
    before = _rss_mib()
    assert release()
    after = _rss_mib()
    assert before - after > 40, (before, after)  # most of the ~80 MiB freed
    assert keep[-1] == 79_999 % 256


@glibc
def test_the_operators_malloc_arena_max_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert memory.limit_malloc_arenas() is True


@pytest.mark.skipif(not hasattr(os, "fork") or memory._libc() is None, reason="fork() and prctl() are Linux's")
def test_a_child_set_to_die_with_its_parent_gets_sigterm_when_the_forking_thread_ends() -> None:
    """The advisor's child (monitor/advisor/child.py): a service killed without its shutdown leaves no orphan."""
    reader, writer = os.pipe()
    child: list[int] = []
    answer: list[bytes] = []

    def fork_and_end() -> None:  # the forking thread ends once the child is set, as when the service is killed
        pid = os.fork()
        if pid == 0:
            ok = memory.die_with_parent()
            os.write(writer, b"1" if ok else b"0")
            time.sleep(30)
            os._exit(0)
        child.append(pid)
        answer.append(os.read(reader, 1))

    thread = threading.Thread(target=fork_and_end)
    thread.start()
    thread.join()
    os.close(reader)
    os.close(writer)
    assert answer == [b"1"]
    _, status = os.waitpid(child[0], 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM  # not the end of its sleep: exit 0
