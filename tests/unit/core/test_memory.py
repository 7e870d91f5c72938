"""Giving freed heap pages back to the system (monitor/core/memory.py), on this process's real glibc heap."""

from __future__ import annotations

import os

import pytest

from monitor.core import memory

glibc = pytest.mark.skipif(memory._libc() is None, reason="not glibc: nothing to trim")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@glibc
def test_freed_heap_pages_go_back_to_the_system() -> None:
    # 1 KiB blocks come from malloc's heap, not from mmap (which is returned at once), and the last one, kept,
    # pins the heap's top: without a trim, glibc keeps the freed blocks' pages, as after an advisor run.
    blocks = [bytes(1024) + bytes([i % 256]) for i in range(80_000)]
    keep = blocks[-1]
    del blocks
    before = _rss_mib()
    assert memory.release_freed_memory()
    after = _rss_mib()
    assert before - after > 40, (before, after)  # most of the ~80 MiB freed
    assert keep[-1] == 79_999 % 256


@glibc
def test_the_operators_malloc_arena_max_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert memory.limit_malloc_arenas() is True
